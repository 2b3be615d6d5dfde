package engine

import (
	"math"
	"runtime/metrics"
	"time"
)

// A phase is timed on the wall clock, so whatever keeps the process from
// running is in it: each time an attempt's goroutine wakes (a reply read, a
// dial done) it waits to be scheduled, and when the process has more
// runnable goroutines than processors (GOMAXPROCS), or the machine more
// runnable threads than cores, that wait lands in the phase that was
// running. The Go runtime records it, the time from runnable to running, in
// the histogram /sched/latencies:seconds. Run reads the histogram as it
// starts and as it ends; the difference is the run's own.

// schedLatencyMetric is the runtime/metrics histogram of scheduling delays.
const schedLatencyMetric = "/sched/latencies:seconds"

// schedSamplingPeriod is how many of a goroutine's transitions the runtime
// counts as one sample in /sched/latencies:seconds: it records one in
// eight (gTrackingPeriod in the runtime's runtime2.go, since Go 1.17; the
// runtime scales its own /sync/mutex/wait/total:seconds by it the same
// way). TestSchedWaitEstimate checks the estimate it gives against a known
// load.
const schedSamplingPeriod = 8

// DistortionShare is the share of the attempts' time spent waiting to be
// scheduled (SchedLatency.WaitShare) from which a run's timings count as
// distorted. Below it, phase medians stay within about 10 % of what the
// same targets measure one at a time: docs/performance.md has the
// measurements.
const DistortionShare = 0.1

// SchedLatency is the process's scheduling delay over a run: how long its
// goroutines, the run's and any other of the process, waited to run once
// they could. The runtime samples the delays (one goroutine transition in
// eight) into buckets a quarter of a power of two wide; each percentile is
// the upper bound of the bucket that holds it, so at most a quarter above
// the true value. Most transitions wait for nothing, so P50 is near zero
// even in a run whose timings the delays distorted; Wait and WaitShare say
// how much they add up to.
type SchedLatency struct {
	// Samples is how many delays the runtime recorded; zero leaves every
	// other figure zero.
	Samples uint64
	// P50, P99 and Max are the median, the 99th percentile and the longest
	// delay.
	P50, P99, Max time.Duration
	// Wait estimates the time the process's goroutines spent runnable but
	// not running, all of them together: each sample counted at its
	// bucket's midpoint, times the sampling period.
	Wait time.Duration
	// WaitShare is Wait over the sum of the run's attempts' Total: the
	// share of the measured time that was waiting to be scheduled, which
	// the phases include. It exceeds 1 when goroutines other than the
	// attempts' waited too. Zero when no attempt finished.
	WaitShare float64
	// Distorted is true when WaitShare is at least DistortionShare with
	// 95 % confidence: Wait less twice its standard error, which the
	// sampling leaves it, is still that share of the attempts' time. A run
	// of a few attempts has a few samples, and one long delay among them,
	// counted eight times, could make the share alone say anything.
	Distorted bool
}

// readSched returns the runtime's cumulative histogram of scheduling delays
// as it is now; nil where the runtime does not provide it.
func readSched() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatencyMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedSince returns the scheduling delays recorded between start, a
// readSched, and now, with WaitShare and Distorted over attempts, the sum of the
// attempts' totals.
func schedSince(start *metrics.Float64Histogram, attempts time.Duration) SchedLatency {
	end := readSched()
	if start == nil || end == nil {
		return SchedLatency{}
	}
	counts := make([]uint64, len(end.Counts))
	for i, c := range end.Counts {
		counts[i] = c - start.Counts[i]
	}
	s, waitErr := schedLatency(counts, end.Buckets)
	if attempts > 0 {
		s.WaitShare = float64(s.Wait) / float64(attempts)
		s.Distorted = float64(s.Wait)-2*float64(waitErr) >= DistortionShare*float64(attempts)
	}
	return s
}

// schedLatency summarises delays counted in buckets, where bucket i holds
// the delays from bounds[i] up to bounds[i+1], and returns the standard
// error of its Wait. Sampling each transition with probability 1/p, the
// estimate p·Σ d over the samples has a variance of (p-1)·p·Σ d² over
// them.
func schedLatency(counts []uint64, bounds []float64) (s SchedLatency, waitErr time.Duration) {
	var sum, squares float64 // seconds, seconds²
	for i, c := range counts {
		if c == 0 {
			continue
		}
		s.Samples += c
		s.Max = seconds(upper(bounds, i))
		mid := (max(bounds[i], 0) + upper(bounds, i)) / 2
		sum += float64(c) * mid
		squares += float64(c) * mid * mid
	}
	if s.Samples == 0 {
		return s, 0
	}
	s.Wait = seconds(sum * schedSamplingPeriod)
	waitErr = seconds(math.Sqrt((schedSamplingPeriod - 1) * schedSamplingPeriod * squares))
	// quantile returns the upper bound of the bucket that holds the delay
	// of rank ceil(q·Samples).
	quantile := func(q float64) time.Duration {
		rank := uint64(math.Ceil(q * float64(s.Samples)))
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= rank {
				return seconds(upper(bounds, i))
			}
		}
		return s.Max
	}
	s.P50, s.P99 = quantile(0.5), quantile(0.99)
	return s, waitErr
}

// upper returns bucket i's upper bound; the lower one for the last,
// unbounded bucket.
func upper(bounds []float64, i int) float64 {
	if math.IsInf(bounds[i+1], 1) {
		return bounds[i]
	}
	return bounds[i+1]
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

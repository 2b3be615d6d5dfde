// Package stats aggregates measured durations into summary statistics:
// count, ok, failed, min, mean, stddev, p50, p90, p99 and max.
//
// An Accumulator keeps every successful duration for exact percentiles; a
// bounded one (NewBounded), for a stream of attempts that must not grow
// with its length, keeps them up to a limit and estimates its percentiles
// past it.
//
// Timing figures describe the successful samples only: a timeout of 5 s or a
// refused connection of 50 µs says nothing about how long the phase takes
// when it works, so failures are counted, not averaged in.
package stats

import (
	"math"
	"slices"
	"time"

	"github.com/beorn7/perks/quantile"
)

// Summary is the aggregate of one phase (or of attempt totals).
type Summary struct {
	Count  int // samples seen, ok or failed
	OK     int // successful samples
	Failed int // failed samples
	// The timing figures of the successful samples; zero when OK is 0.
	Min, Mean, Stddev, P50, P90, P99, Max time.Duration
}

// Accumulator collects samples. The zero value is ready to use. It keeps the
// successful durations to compute exact percentiles, unless it is bounded
// (NewBounded).
type Accumulator struct {
	count, failed int
	oks           []time.Duration
	// exact is the most durations a bounded accumulator keeps; 0 when it is
	// not bounded.
	exact int
	// Past exact durations, a bounded accumulator keeps their moments and
	// extremes (Welford's running mean and squared deviations) and a
	// quantile stream, and oks no more.
	n          int
	mean, m2   float64
	lo, hi     time.Duration
	stream     *quantile.Stream
	overflowed bool
}

// BoundedExact is how many successful durations NewBounded's accumulators
// keep, for exact percentiles, before they estimate them: 512 KiB of each.
const BoundedExact = 1 << 16

// The rank errors of a bounded accumulator's percentiles past BoundedExact
// samples: p50 within ±0.5 % of the ranks, p90 ±0.1 %, p99 ±0.01 %.
var boundedTargets = map[float64]float64{0.5: 0.005, 0.9: 0.001, 0.99: 0.0001}

// NewBounded returns an accumulator whose memory does not grow with its
// samples: it keeps the first BoundedExact successful durations and
// computes exact statistics from them, as an unbounded one does; past them,
// its count, min, max, mean and stddev stay exact, and its p50, p90 and p99
// are estimated by a CKMS quantile stream (github.com/beorn7/perks, as
// Prometheus's summaries) within a rank error of ±0.5 %, ±0.1 % and
// ±0.01 %, in a few thousand samples at most.
func NewBounded() *Accumulator { return &Accumulator{exact: BoundedExact} }

// Add records one sample.
func (a *Accumulator) Add(d time.Duration, ok bool) {
	a.count++
	if !ok {
		a.failed++
		return
	}
	if a.exact == 0 || len(a.oks) < a.exact && !a.overflowed {
		a.oks = append(a.oks, d)
		return
	}
	if !a.overflowed {
		a.overflowed = true
		a.stream = quantile.NewTargeted(boundedTargets)
		a.lo, a.hi = a.oks[0], a.oks[0]
		for _, x := range a.oks {
			a.observe(x)
		}
		a.oks = nil
	}
	a.observe(d)
}

// observe adds d to a bounded accumulator's moments, extremes and stream.
func (a *Accumulator) observe(d time.Duration) {
	a.n++
	delta := float64(d) - a.mean
	a.mean += delta / float64(a.n)
	a.m2 += delta * (float64(d) - a.mean)
	a.lo, a.hi = min(a.lo, d), max(a.hi, d)
	a.stream.Insert(float64(d))
}

// Summary returns the statistics of the samples added so far.
func (a *Accumulator) Summary() Summary {
	if a.overflowed {
		s := Summary{Count: a.count, OK: a.n, Failed: a.failed, Min: a.lo, Max: a.hi, Mean: time.Duration(a.mean),
			Stddev: time.Duration(math.Sqrt(a.m2 / float64(a.n-1)))}
		q := func(p float64) time.Duration { return time.Duration(a.stream.Query(p)) }
		s.P50, s.P90, s.P99 = q(0.5), q(0.9), q(0.99)
		return s
	}
	s := Summary{Count: a.count, OK: len(a.oks), Failed: a.failed}
	n := len(a.oks)
	if n == 0 {
		return s
	}
	sorted := slices.Clone(a.oks)
	slices.Sort(sorted)
	var sum float64
	for _, d := range sorted {
		sum += float64(d)
	}
	mean := sum / float64(n)
	var sq float64
	for _, d := range sorted {
		dev := float64(d) - mean
		sq += dev * dev
	}
	if n > 1 {
		s.Stddev = time.Duration(math.Sqrt(sq / float64(n-1)))
	}
	s.Min, s.Max = sorted[0], sorted[n-1]
	s.Mean = time.Duration(mean)
	s.P50 = Percentile(sorted, 50)
	s.P90 = Percentile(sorted, 90)
	s.P99 = Percentile(sorted, 99)
	return s
}

// Percentile returns the p-th percentile (0-100) of sorted durations by
// linear interpolation between the closest ranks, as numpy's default and
// most spreadsheets do. sorted must be sorted ascending and not empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 1 {
		return sorted[0]
	}
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[hi]-sorted[lo])))
}

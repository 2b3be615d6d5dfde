// Package stats aggregates measured durations into summary statistics:
// count, ok, failed, min, mean, stddev, p50, p90, p99 and max.
//
// Timing figures describe the successful samples only: a timeout of 5 s or a
// refused connection of 50 µs says nothing about how long the phase takes
// when it works, so failures are counted, not averaged in.
package stats

import (
	"math"
	"slices"
	"time"
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
// successful durations to compute exact percentiles.
type Accumulator struct {
	count, failed int
	oks           []time.Duration
}

// Add records one sample.
func (a *Accumulator) Add(d time.Duration, ok bool) {
	a.count++
	if !ok {
		a.failed++
		return
	}
	a.oks = append(a.oks, d)
}

// Summary returns the statistics of the samples added so far.
func (a *Accumulator) Summary() Summary {
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

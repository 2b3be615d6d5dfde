package stats

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type sample struct {
	Duration time.Duration
	OK       bool
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestSummary(t *testing.T) {
	tests := []struct {
		name    string
		samples []sample
		want    Summary
	}{
		{
			name: "empty",
			want: Summary{},
		},
		{
			name:    "one",
			samples: []sample{{ms(2), true}},
			want:    Summary{Count: 1, OK: 1, Min: ms(2), Mean: ms(2), P50: ms(2), P90: ms(2), P99: ms(2), Max: ms(2)},
		},
		{
			name:    "failures are counted, not timed",
			samples: []sample{{ms(1), true}, {ms(5000), false}, {ms(3), true}},
			// mean 2, sample stddev sqrt(((1-2)^2+(3-2)^2)/1) = 1.4142ms
			want: Summary{Count: 3, OK: 2, Failed: 1, Min: ms(1), Mean: ms(2), Stddev: 1414213,
				P50: ms(2), P90: ms(2.8), P99: ms(2.98), Max: ms(3)},
		},
		{
			name:    "only failures",
			samples: []sample{{ms(1), false}},
			want:    Summary{Count: 1, Failed: 1},
		},
		{
			name: "ten samples, unsorted",
			samples: []sample{{ms(10), true}, {ms(1), true}, {ms(9), true}, {ms(2), true}, {ms(8), true},
				{ms(3), true}, {ms(7), true}, {ms(4), true}, {ms(6), true}, {ms(5), true}},
			// stddev of 1..10 = 3.02765ms
			want: Summary{Count: 10, OK: 10, Min: ms(1), Mean: ms(5.5), Stddev: 3027650,
				P50: ms(5.5), P90: ms(9.1), P99: ms(9.91), Max: ms(10)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Accumulator
			for _, s := range tt.samples {
				a.Add(s.Duration, s.OK)
			}
			got := a.Summary()
			// Stddev goes through a square root: compare to the microsecond.
			if d := got.Stddev - tt.want.Stddev; d > time.Microsecond || d < -time.Microsecond {
				t.Errorf("Stddev = %v, want %v", got.Stddev, tt.want.Stddev)
			}
			got.Stddev = tt.want.Stddev
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summary mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBounded checks that a bounded accumulator is exact up to
// BoundedExact samples, and past them keeps count, min, max, mean and stddev
// exact and its percentiles within their rank errors, in few samples:
// 200,000 durations, shuffled, with failures among them.
func TestBounded(t *testing.T) {
	const n = 200_000
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	exact, bounded := &Accumulator{}, NewBounded()
	for i, k := range order {
		d := time.Duration(k+1) * time.Microsecond // 1 µs to 0.2 s, each once
		ok := i%10 != 0
		exact.Add(d, ok)
		bounded.Add(d, ok)
		if i+1 == BoundedExact {
			if diff := cmp.Diff(exact.Summary(), bounded.Summary()); diff != "" {
				t.Errorf("after %d samples, bounded differs from exact (-exact +bounded):\n%s", i+1, diff)
			}
		}
	}
	want, got := exact.Summary(), bounded.Summary()
	if got.Count != want.Count || got.OK != want.OK || got.Failed != want.Failed || got.Min != want.Min || got.Max != want.Max {
		t.Errorf("counts and extremes: got %+v, want %+v", got, want)
	}
	for name, d := range map[string]time.Duration{"mean": got.Mean - want.Mean, "stddev": got.Stddev - want.Stddev} {
		if d.Abs() > time.Microsecond {
			t.Errorf("%s off the exact one by %v", name, d)
		}
	}
	// Durations are their ranks here (in µs, over ~n values): a rank error
	// of e is about e·n µs.
	for _, p := range []struct {
		name      string
		got, want time.Duration
		rankErr   float64
	}{
		{"p50", got.P50, want.P50, 0.005}, {"p90", got.P90, want.P90, 0.001}, {"p99", got.P99, want.P99, 0.0001},
	} {
		if limit := time.Duration(2*p.rankErr*n) * time.Microsecond; (p.got - p.want).Abs() > limit {
			t.Errorf("%s = %v, exact %v: off by more than %v", p.name, p.got, p.want, limit)
		}
	}
	if bounded.oks != nil {
		t.Errorf("bounded accumulator still keeps %d durations", len(bounded.oks))
	}
	if kept := len(bounded.stream.Samples()); kept > 20_000 {
		t.Errorf("the quantile stream keeps %d samples of %d", kept, n)
	}
}

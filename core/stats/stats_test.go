package stats

import (
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

package engine

import (
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// nanosecond compares durations computed from floating point seconds: to
// the nanosecond.
var nanosecond = cmp.Comparer(func(a, b time.Duration) bool { return a-b <= 1 && b-a <= 1 })

func TestSchedLatencySummary(t *testing.T) {
	// Buckets as the runtime lays them out: an underflow bucket, then
	// bounds in seconds, the last bucket unbounded.
	bounds := []float64{math.Inf(-1), 0, 1e-6, 2e-6, 4e-6, 1e-3, math.Inf(1)}
	us := time.Microsecond
	tests := []struct {
		name    string
		counts  []uint64
		want    SchedLatency
		waitErr time.Duration
	}{
		{"none", []uint64{0, 0, 0, 0, 0, 0}, SchedLatency{}, 0},
		{"one bucket", []uint64{0, 0, 10, 0, 0, 0},
			// 10 delays of 1.5 µs, each standing for 8.
			SchedLatency{Samples: 10, P50: 2 * us, P99: 2 * us, Max: 2 * us, Wait: 120 * us},
			seconds(math.Sqrt(7 * 8 * 10 * 1.5e-6 * 1.5e-6))},
		{"a tail", []uint64{0, 1, 97, 1, 0, 1},
			// rank 50 is in [1 µs, 2 µs), rank 99 in [2 µs, 4 µs); the
			// longest is in the unbounded bucket, counted and reported at
			// its lower bound, 1 ms.
			SchedLatency{Samples: 100, P50: 2 * us, P99: 4 * us, Max: time.Millisecond,
				Wait: seconds(8 * (1*0.5e-6 + 97*1.5e-6 + 1*3e-6 + 1*1e-3))},
			seconds(math.Sqrt(7 * 8 * (1*0.5e-6*0.5e-6 + 97*1.5e-6*1.5e-6 + 1*3e-6*3e-6 + 1*1e-3*1e-3)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, waitErr := schedLatency(tt.counts, bounds)
			if diff := cmp.Diff(tt.want, got, nanosecond); diff != "" {
				t.Errorf("schedLatency (-want +got):\n%s", diff)
			}
			if !cmp.Equal(waitErr, tt.waitErr, nanosecond) {
				t.Errorf("standard error of Wait %v, want %v", waitErr, tt.waitErr)
			}
		})
	}
}

// TestSchedWaitEstimate loads the process with a known amount of waiting
// and checks the estimate of it. K goroutines that only compute and yield,
// on P = GOMAXPROCS processors, keep K-P of them runnable at every moment,
// however busy the machine is: over D they wait (K-P)·D in all, a share of
// (K-P)/K of their time. The estimate, from one transition in eight, must
// be within a factor of two of it (on a busy 2-core VM it read 0.51 to 1.05
// for 0.75: the machine's stalls of tens of milliseconds are few and long).
// The same goroutines sleeping instead wait for next to nothing.
func TestSchedWaitEstimate(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	k := 4 * procs
	const d = 500 * time.Millisecond
	tests := []struct {
		name     string
		work     func()
		min, max float64 // WaitShare
	}{
		{"overloaded", func() {
			for start := time.Now(); time.Since(start) < 20*time.Microsecond; {
			}
			runtime.Gosched()
		}, 0.5 * float64(k-procs) / float64(k), 2 * float64(k-procs) / float64(k)},
		{"idle", func() { time.Sleep(10 * time.Millisecond) }, 0, DistortionShare / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := readSched()
			start := time.Now()
			var wg sync.WaitGroup
			for range k {
				wg.Go(func() {
					for time.Since(start) < d {
						tt.work()
					}
				})
			}
			wg.Wait()
			got := schedSince(snap, time.Duration(k)*time.Since(start))
			t.Logf("%d goroutines on %d processors: %+v", k, procs, got)
			if got.Samples == 0 || got.WaitShare < tt.min || got.WaitShare > tt.max {
				t.Errorf("WaitShare %.3f from %d samples, want %.3f to %.3f", got.WaitShare, got.Samples, tt.min, tt.max)
			}
		})
	}
}

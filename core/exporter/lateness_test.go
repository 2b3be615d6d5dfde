package exporter

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/probe-dev/probe/core/engine"
)

// TestLateness feeds the lateness sink attempts of a 10s schedule and reads
// what it observed: each round's first attempt of a target at an address
// against the previous one's start, an early one as on time, a target's
// first round and a round's later attempts not at all.
func TestLateness(t *testing.T) {
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_lateness_seconds", Buckets: latenessBuckets})
	l := newLateness(hist, 10*time.Second)
	t0 := time.Now()
	a1, a2 := netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("127.0.0.2:443")
	for _, a := range []engine.Attempt{
		{Target: "api", Seq: 1, Address: a1, Started: t0},
		{Target: "api", Seq: 2, Address: a1, Started: t0.Add(time.Second)},                          // a round's second attempt
		{Target: "api", Seq: 1, Address: a2, Started: t0.Add(5 * time.Millisecond)},                 // another address: its first
		{Target: "web", Seq: 1, Address: a1, Started: t0.Add(time.Millisecond)},                     // another target: its first
		{Target: "api", Seq: 1, Address: a1, Started: t0.Add(10*time.Second + 3*time.Millisecond)},  // 3 ms late
		{Target: "web", Seq: 1, Address: a1, Started: t0.Add(10*time.Second - time.Microsecond)},    // early: on time
		{Target: "api", Seq: 1, Address: a1, Started: t0.Add(20*time.Second + 10*time.Millisecond)}, // 7 ms late
	} {
		if err := l.Attempt(&a); err != nil {
			t.Fatal(err)
		}
	}
	var m dto.Metric
	if err := hist.Write(&m); err != nil {
		t.Fatal(err)
	}
	h := m.GetHistogram()
	if n, sum := h.GetSampleCount(), h.GetSampleSum(); n != 3 || sum < 0.00999 || sum > 0.01001 {
		t.Errorf("observed %d samples summing to %vs, want 3 summing to 0.010s (3 ms, 0, 7 ms)", n, sum)
	}
}

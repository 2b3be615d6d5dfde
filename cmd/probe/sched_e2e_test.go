package main

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/engine"
)

// TestSchedLatency runs probe on many lab targets twice. Quiet: one target
// after another against the slow TLS server, whose 40 ms before answering
// probe spends asleep. Overloaded: with one processor (GOMAXPROCS=1), 200
// targets at once against the TLS server on loopback, so that every
// attempt's goroutine waits for the handshakes of the others to compute.
// Both report the scheduling delay in the JSON summary; only the overloaded
// one is distorted, and says so on stderr.
//
// Not parallel: the overloaded run takes the CPU for a second.
func TestSchedLatency(t *testing.T) {
	tests := []struct {
		name      string
		env       []string
		targets   int
		port      uint16
		args      []string
		distorted bool
	}{
		{"quiet", nil, 20, testLab.SlowTLS.Addr.Port(), []string{"--sequential"}, false},
		{"overloaded", []string{"GOMAXPROCS=1"}, 200, testLab.TLS.Addr.Port(), []string{"--concurrency", "200"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "sched.hcl", labHeader("5s")+fmt.Sprintf(`
target "t" {
  for_each = [for i in range(%d) : tostring(i)]
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, tt.targets, tt.port))
			r := probe(t, tt.env, append([]string{"run", file, "-o", "json"}, tt.args...)...)
			wantExit(t, r, exitOK)
			doc := decodeDoc(t, r.stdout)
			s := doc.Summary.SchedLatency
			t.Logf("%+v; tls median %.3f ms", s, doc.Stats["tls"].P50MS)
			if s.Samples == 0 || s.P50MS > s.P99MS || s.P99MS > s.MaxMS {
				t.Errorf("sched_latency %+v: want samples, and p50 <= p99 <= max", s)
			}
			// wait_share is wait_ms over the attempts' time.
			total := doc.Stats["total"]
			if want := s.WaitMS / (total.MeanMS * float64(total.Count)); math.Abs(s.WaitShare-want) > 0.002 {
				t.Errorf("wait_share %v, want wait_ms/sum(total_ms) = %.4f", s.WaitShare, want)
			}
			// The quiet run's share is small but uncertain (a few dozen
			// samples, of which one may be a long stall of the machine);
			// distorted allows for that.
			if s.Distorted != tt.distorted || (tt.distorted && s.WaitShare < engine.DistortionShare) {
				t.Errorf("distorted %v with wait_share %v, want %v", s.Distorted, s.WaitShare, tt.distorted)
			}
			warned := strings.Contains(r.stderr, "timings distorted")
			if warned != tt.distorted {
				t.Errorf("warning on stderr %v, want %v:\n%s", warned, tt.distorted, r.stderr)
			}
			if tt.distorted && !strings.Contains(r.stderr, fmt.Sprintf("wait_share=%v", s.WaitShare)) {
				t.Errorf("the warning does not give the wait share %v:\n%s", s.WaitShare, r.stderr)
			}
		})
	}
}

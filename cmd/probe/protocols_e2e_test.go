package main

import (
	"testing"
)

// TestTestICMP runs `probe test HOST PORT icmp` on loopback, in process and
// with --isolate: the pipeline is resolve then icmp, each attempt one echo
// answered with the loopback's TTL.
func TestTestICMP(t *testing.T) {
	t.Parallel()
	for _, isolate := range []bool{false, true} {
		args := []string{"test", "-o", "json", "--attempts", "2", "127.0.0.1", "1", "icmp"}
		if isolate {
			args = append(args, "--isolate")
		}
		r := probe(t, nil, args...)
		wantExit(t, r, exitOK)
		doc := decodeDoc(t, r.stdout)
		if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 2 || doc.Targets[0].Pipeline != "icmp" {
			t.Fatalf("isolate %v: want one target of pipeline icmp with two attempts:\n%s", isolate, r.stdout)
		}
		for _, a := range doc.Targets[0].Attempts {
			checkAttempt(t, a, []string{"resolve", "icmp"})
			checkAttrs(t, a.Phases[1], map[string]any{"sent": 1.0, "received": 1.0, "loss_percent": 0.0, "ttl": 64.0, "remote": "127.0.0.1"})
		}
	}
}

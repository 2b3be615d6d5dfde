package main

import (
	"fmt"
	"testing"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// TestTestProtocols runs `probe test HOST PORT PROTO` for the protocols of
// the protocol plugins against real servers, in process and with
// --isolate: each probes the server with its implied pipeline and reports
// what the server is.
func TestTestProtocols(t *testing.T) {
	t.Parallel()
	sshd, err := daemon.StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Close() })
	tests := []struct {
		name   string
		args   []string
		phases []string
		attrs  map[string]any // of the last phase
	}{
		{"ssh", []string{"127.0.0.1", fmt.Sprint(sshd.Addr.Port()), "ssh"}, []string{"resolve", "connect", "ssh"},
			map[string]any{"host_key_fingerprint": sshd.HostKeyFingerprint, "host_key_type": "ssh-ed25519"}},
	}
	for _, tc := range tests {
		for _, isolate := range []bool{false, true} {
			args := append(append([]string{"test"}, tc.args...), "-o", "json")
			name := tc.name
			if isolate {
				args, name = append(args, "--isolate"), name+" isolated"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := probe(t, nil, args...)
				wantExit(t, r, exitOK)
				doc := decodeDoc(t, r.stdout)
				if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 1 {
					t.Fatalf("want one target with one attempt:\n%s", r.stdout)
				}
				a := doc.Targets[0].Attempts[0]
				checkAttempt(t, a, tc.phases)
				if len(a.Phases) == len(tc.phases) {
					checkAttrs(t, a.Phases[len(a.Phases)-1], tc.attrs)
				}
			})
		}
	}
}

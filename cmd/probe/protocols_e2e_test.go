package main

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
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
	unbound, err := daemon.StartUnbound()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unbound.Close() })
	ca, err := lab.NewCA("protocols test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WritePEM(caFile); err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mail.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	exim, err := daemon.StartExim(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exim.Close() })
	dovecot, err := daemon.StartDovecot(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dovecot.Close() })
	pg, err := daemon.StartPostgres(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	upgraded := []string{"resolve", "connect", "starttls", "tls"}
	verified := map[string]any{"verified": true, "cert_subject": "CN=mail.probe.test", "server_name": ""}
	tlsFlags := []string{"--ca-file", caFile}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedUDP := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	tests := []struct {
		name   string
		args   []string
		phases []string
		class  string         // "" for success
		attrs  map[string]any // of the last phase
	}{
		{"ssh", []string{"127.0.0.1", fmt.Sprint(sshd.Addr.Port()), "ssh"}, []string{"resolve", "connect", "ssh"}, "",
			map[string]any{"host_key_fingerprint": sshd.HostKeyFingerprint, "host_key_type": "ssh-ed25519"}},
		// unbound refuses the root (its zone is probe.test. alone), in a
		// reply: 17 bytes, the query's ID, REFUSED.
		{"dns-udp", []string{"127.0.0.1", fmt.Sprint(unbound.Addr.Port()), "dns-udp"}, []string{"resolve", "connect", "udp"}, "",
			map[string]any{"request_bytes": 17.0, "reply_bytes": 17.0, "reply_hex": "1234858500010000000000000000060001"}},
		{"dns-udp closed port", []string{"127.0.0.1", fmt.Sprint(closedUDP), "dns-udp"}, []string{"resolve", "connect", "udp"}, "udp.refused", nil},
		{"smtp", append([]string{"127.0.0.1", fmt.Sprint(exim.Addr.Port()), "smtp"}, tlsFlags...), upgraded, "", verified},
		{"imap", append([]string{"127.0.0.1", fmt.Sprint(dovecot.IMAP.Port()), "imap"}, tlsFlags...), upgraded, "", verified},
		{"pop3", append([]string{"127.0.0.1", fmt.Sprint(dovecot.POP3.Port()), "pop3"}, tlsFlags...), upgraded, "", verified},
		{"postgres", append([]string{"127.0.0.1", fmt.Sprint(pg.Addr.Port()), "postgres"}, tlsFlags...), upgraded, "", verified},
		// The CA is not given: the certificate does not verify.
		{"postgres untrusted", []string{"127.0.0.1", fmt.Sprint(pg.Addr.Port()), "postgres"}, upgraded, "tls.cert_untrusted", map[string]any{"verified": false}},
		{"imap at the smtp port", []string{"127.0.0.1", fmt.Sprint(exim.Addr.Port()), "imap"}, upgraded, "starttls.protocol", map[string]any{}},
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
				if tc.class == "" {
					wantExit(t, r, exitOK)
				} else {
					wantExit(t, r, exitFailed)
				}
				doc := decodeDoc(t, r.stdout)
				if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 1 {
					t.Fatalf("want one target with one attempt:\n%s", r.stdout)
				}
				a := doc.Targets[0].Attempts[0]
				checkAttempt(t, a, tc.phases)
				if tc.class != "" && (a.Failure == nil || string(a.Failure.Class) != tc.class) {
					t.Errorf("failure %+v, want class %s", a.Failure, tc.class)
				}
				if len(a.Phases) == len(tc.phases) {
					checkAttrs(t, a.Phases[len(a.Phases)-1], tc.attrs)
				}
			})
		}
	}
}

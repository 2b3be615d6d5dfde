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

// TestTestGRPC runs `probe test HOST PORT grpc` and `grpcs` against the
// lab's gRPC health servers (grpc-go's health service), in process and
// with --isolate: resolve, connect, (tls,) grpc, and SERVING.
func TestTestGRPC(t *testing.T) {
	t.Parallel()
	now := time.Now()
	cert, err := testLab.CA.Issue([]string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := lab.StartGRPCHealth(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	overTLS, err := lab.StartGRPCHealth(&cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = overTLS.Close() })
	for _, tt := range []struct {
		proto  string
		port   uint16
		args   []string
		phases []string
	}{
		{"grpc", plain.Addr.Port(), nil, []string{"resolve", "connect", "grpc"}},
		{"grpcs", overTLS.Addr.Port(), []string{"--ca-file", testLab.CAFile}, []string{"resolve", "connect", "tls", "grpc"}},
	} {
		for _, isolate := range []bool{false, true} {
			args := append([]string{"test", "-o", "json", "127.0.0.1", fmt.Sprint(tt.port), tt.proto}, tt.args...)
			if isolate {
				args = append(args, "--isolate")
			}
			r := probe(t, nil, args...)
			wantExit(t, r, exitOK)
			doc := decodeDoc(t, r.stdout)
			if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 1 {
				t.Fatalf("%s isolate %v: want one target with one attempt:\n%s", tt.proto, isolate, r.stdout)
			}
			a := doc.Targets[0].Attempts[0]
			checkAttempt(t, a, tt.phases)
			checkAttrs(t, a.Phases[len(a.Phases)-1], map[string]any{"status": "SERVING", "code": "OK", "service": ""})
		}
	}
}

// TestTestH3 runs `probe test HOST PORT h3` and `quic` against Debian's
// caddy serving HTTP/3 with a certificate of the lab's CA, in process and
// with --isolate (the QUIC connection then lives in the plugin process,
// which runs http3 too): resolve, quic with its TLS and QUIC facts, http3
// with status 200.
func TestTestH3(t *testing.T) {
	t.Parallel()
	caddy, err := daemon.StartCaddy(testLab.CA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Close() })
	port := fmt.Sprint(caddy.Addr.Port())
	for _, proto := range []string{"h3", "quic"} {
		for _, isolate := range []bool{false, true} {
			args := []string{"test", "-o", "json", "127.0.0.1", port, proto, "--ca-file", testLab.CAFile, "--sni", "api.probe.test"}
			if isolate {
				args = append(args, "--isolate")
			}
			r := probe(t, nil, args...)
			wantExit(t, r, exitOK)
			doc := decodeDoc(t, r.stdout)
			if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 1 {
				t.Fatalf("%s isolate %v: want one target with one attempt:\n%s", proto, isolate, r.stdout)
			}
			a := doc.Targets[0].Attempts[0]
			phases := []string{"resolve", "quic", "http3"}
			if proto == "quic" {
				phases = phases[:2]
			}
			checkAttempt(t, a, phases)
			checkAttrs(t, a.Phases[1], map[string]any{"version": "TLS 1.3", "alpn": "h3", "quic_version": "v1", "verified": true, "server_name": "api.probe.test"})
			if proto == "h3" {
				checkAttrs(t, a.Phases[2], map[string]any{"status": 200.0, "proto": "HTTP/3.0", "url": "https://127.0.0.1:" + port + "/"})
			}
		}
	}
}

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
	unbound, err := daemon.StartUnbound(daemon.UnboundConfig{})
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

package main

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
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
	caddy, err := lab.StartCaddy(testLab.CA)
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

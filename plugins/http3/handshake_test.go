package http3handshake

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
)

// The tests speak HTTP/3 to one caddy, Debian's, with a certificate of ca,
// started by TestMain.
var (
	caddy *daemon.Caddy
	ca    *lab.CA
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if ca, err = lab.NewCA("http3 test CA"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if caddy, err = daemon.StartCaddy(ca); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer caddy.Close()
	return m.Run()
}

// handle opens a QUIC connection to addr with quic-go, as the quic dialer
// does, and returns it as the dialer hands it on.
func handle(t *testing.T, addr netip.AddrPort) *sdk.Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr.String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "api.probe.test", NextProtos: []string{"h3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	return &sdk.Handle{Kind: sdk.ConnQUIC, Value: conn, Close: func() error { return conn.CloseWithError(0, "") }}
}

func handshake(t *testing.T, values map[string]cty.Value, h *sdk.Handle, addr netip.AddrPort) *sdk.HandshakeResponse {
	t.Helper()
	cfg, err := Plugin().HandshakeSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := hs.Handshake(ctx, &sdk.HandshakeRequest{Handle: h, Host: "api.probe.test", Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one named %s", resp.Phases, Phase)
	}
	return resp
}

// TestCaddy sends requests to caddy over HTTP/3 and checks status, body
// size, protocol and timings.
func TestCaddy(t *testing.T) {
	for _, tt := range []struct {
		path   string
		expect []int
		status int
		bytes  int64
		class  sdk.Class
	}{
		{"/", nil, 200, int64(len("probe lab caddy\n")), ""},
		{"/missing", nil, 404, 0, ClassStatus},
		{"/missing", []int{404}, 404, 0, ""},
	} {
		t.Run(fmt.Sprint(tt.path, tt.expect), func(t *testing.T) {
			values := map[string]cty.Value{"path": cty.StringVal(tt.path)}
			if tt.expect != nil {
				var vs []cty.Value
				for _, c := range tt.expect {
					vs = append(vs, cty.NumberIntVal(int64(c)))
				}
				values["expect_status"] = cty.ListVal(vs)
			}
			resp := handshake(t, values, handle(t, caddy.Addr), caddy.Addr)
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
			}
			a := resp.Phases[0].Attrs
			if class != tt.class || a["status"] != tt.status || a["body_bytes"] != tt.bytes || a["proto"] != "HTTP/3.0" {
				t.Errorf("failure %+v, attrs %v; want class %q, status %d, %d body bytes, HTTP/3.0", resp.Failure, a, tt.class, tt.status, tt.bytes)
			}
			if want := fmt.Sprintf("https://api.probe.test:%d%s", caddy.Addr.Port(), tt.path); a["url"] != want {
				t.Errorf("url %v, want %s", a["url"], want)
			}
			ttfb, transfer := a["ttfb_ms"].(float64), a["transfer_ms"].(float64)
			if total := float64(resp.Phases[0].Duration) / float64(time.Millisecond); ttfb <= 0 || transfer < 0 || ttfb+transfer > total+0.01 {
				t.Errorf("ttfb %v ms + transfer %v ms, phase %v ms", ttfb, transfer, total)
			}
		})
	}
}

// TestSilentServer checks a QUIC server that completes the handshake and
// never answers the request: http3.timeout at the handshake's timeout.
func TestSilentServer(t *testing.T) {
	now := time.Now()
	cert, err := ca.Issue([]string{"api.probe.test"}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			defer c.CloseWithError(0, "")
		}
	}()
	addr := netip.MustParseAddrPort(ln.Addr().(*net.UDPAddr).String())
	start := time.Now()
	resp := handshake(t, map[string]cty.Value{"timeout": cty.StringVal("300ms")}, handle(t, addr), addr)
	if took := time.Since(start); resp.Failure == nil || resp.Failure.Class != ClassTimeout || took > 2*time.Second {
		t.Errorf("failure %+v after %v, want %s at 300ms", resp.Failure, took, ClassTimeout)
	}
}

// TestNoQUIC checks that a handshake handed no QUIC connection is a Go
// error (the configuration refuses such a pipeline).
func TestNoQUIC(t *testing.T) {
	cfg, err := Plugin().HandshakeSchema.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handshake(t.Context(), &sdk.HandshakeRequest{Address: caddy.Addr}); err == nil {
		t.Error("a handshake without a QUIC connection ran")
	}
}

func TestConfig(t *testing.T) {
	for _, tt := range []struct {
		attr string
		v    cty.Value
	}{
		{"method", cty.StringVal("GE T")},
		{"path", cty.StringVal("healthz")},
		{"host", cty.StringVal("a b")},
		{"expect_status", cty.ListVal([]cty.Value{cty.NumberIntVal(99)})},
		{"max_body_bytes", cty.NumberIntVal(-1)},
		{"timeout", cty.StringVal("soon")},
	} {
		cfg, err := Plugin().HandshakeSchema.Config(map[string]cty.Value{tt.attr: tt.v})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s = %#v accepted", tt.attr, tt.v)
		} else if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tt.attr {
			t.Errorf("%s = %#v: %v, want an attribute error on it", tt.attr, tt.v, err)
		}
	}
}

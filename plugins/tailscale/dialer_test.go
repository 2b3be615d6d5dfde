package tailscale

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

func newDialer(t *testing.T, cfg cty.Value) *Dialer {
	t.Helper()
	d, err := NewDialer(cfg)
	if err != nil {
		t.Fatalf("NewDialer: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// dial dials addr within 10 s.
func dial(t *testing.T, d *Dialer, addr netip.AddrPort) *sdk.DialResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: addr.Addr().String()})
	if err != nil {
		t.Fatalf("Dial(%s) returned a Go error: %v", addr, err)
	}
	return resp
}

// connected checks that resp is a connection with one phase, which it
// returns; the connection is closed when the test ends.
func connected(t *testing.T, resp *sdk.DialResponse) sdk.Phase {
	t.Helper()
	if resp.Failure != nil {
		t.Fatalf("Failure = %v, want none", resp.Failure)
	}
	t.Cleanup(func() { resp.Conn.Close() })
	if len(resp.Phases) != 1 {
		t.Fatalf("got %d phases, want 1", len(resp.Phases))
	}
	return resp.Phases[0]
}

// get sends an HTTP/1.0 request over conn and returns the response body.
func get(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	resp, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read the response: %v", err)
	}
	_, body, _ := strings.Cut(string(resp), "\r\n\r\n")
	return body
}

func TestDialPeers(t *testing.T) {
	tests := []struct {
		name, peer, body string
		addr             netip.AddrPort
	}{
		{"IPv4", "web", "web", netip.AddrPortFrom(tn.web, 80)},
		{"IPv6", "web", "web", netip.AddrPortFrom(tn.web6, 80)},
		// The daemon forwards tailnet TCP to its host's 127.0.0.1.
		{"relayed", "daemon", "daemon", netip.AddrPortFrom(tn.daemon, tn.daemonPort)},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			d := newDialer(t, tn.config(sdk.KindDialer, backend, nil))
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					resp := dial(t, d, tc.addr)
					p := connected(t, resp)
					if _, ok := resp.Conn.(syscall.Conn); !ok {
						t.Errorf("conn %T has no kernel socket to send to probe", resp.Conn)
					}
					if p.Name != sdk.PhaseConnect || !p.OK || p.Start <= 0 || p.Duration <= 0 || p.Duration > 5*time.Second {
						t.Errorf("phase = %s ok=%v start=%v duration=%v, want an ok connect after the status check, within 5s", p.Name, p.OK, p.Start, p.Duration)
					}
					if p.Attrs["peer"] != tc.peer || p.Attrs["remote"] != tc.addr.String() || p.Attrs["proxied"] != true {
						t.Errorf("attrs = %v, want peer %s, remote %s, proxied", p.Attrs, tc.peer, tc.addr)
					}
					if body := get(t, resp.Conn); body != tc.body {
						t.Errorf("body %q through the connection, want %q", body, tc.body)
					}
				})
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name string
		addr netip.AddrPort
		want sdk.Class
	}{
		{"nothing listens", netip.AddrPortFrom(tn.web, 81), sdk.ClassTCPRefused},
		{"address of no node", netip.AddrPortFrom(trapAddr, 80), ClassNotAPeer},
		{"address outside the tailnet", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), tn.daemonPort), ClassNotAPeer},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			d := newDialer(t, tn.config(sdk.KindDialer, backend, nil))
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					trapped := tn.trapped.Load()
					resp := dial(t, d, tc.addr)
					if resp.Conn != nil {
						resp.Conn.Close()
						t.Error("Conn is set on a failed dial")
					}
					if f := resp.Failure; f == nil || f.Class != tc.want || f.Phase != sdk.PhaseConnect || f.Message == "" {
						t.Fatalf("Failure = %+v, want %s in connect with a message", f, tc.want)
					}
					if p := resp.Phases[0]; len(resp.Phases) != 1 || p.Name != sdk.PhaseConnect || p.OK || p.Duration <= 0 || p.Duration > 5*time.Second {
						t.Errorf("phases = %+v, want one failed connect within 5s", resp.Phases)
					}
					if n := tn.trapped.Load() - trapped; n != 0 {
						t.Errorf("%d connections fell through to the host's network", n)
					}
				})
			}
			// The check above matters: the node itself lets a dial to
			// an address that is no peer through to the host's network.
			t.Run("unchecked dial falls through", func(t *testing.T) {
				trapped := tn.trapped.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				conn, err := d.node.dialUser(ctx, netip.AddrPortFrom(trapAddr, 80))
				if err != nil {
					t.Fatalf("dial %s through the node: %v", trapAddr, err)
				}
				_, _ = io.Copy(io.Discard, conn) // the trap closes it
				conn.Close()
				if n := tn.trapped.Load() - trapped; n != 1 {
					t.Errorf("the trap saw %d connections, want 1", n)
				}
			})
		})
	}
}

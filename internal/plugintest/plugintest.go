// Package plugintest is what the plugins' own tests share: a component
// built from attribute values as the core does, and loopback servers that
// end with the test.
package plugintest

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
)

// Handshaker builds p's handshaker from values through p's handshake
// schema, as the core does. Values the schema refuses fail tb; the
// handshaker's own error is returned, for a test to check.
func Handshaker(tb testing.TB, p *sdk.Plugin, values map[string]cty.Value) (sdk.Handshaker, error) {
	tb.Helper()
	cfg, err := p.HandshakeSchema.Config(values)
	if err != nil {
		tb.Fatalf("Config(%v): %v", values, err)
	}
	return p.NewHandshaker(cfg)
}

// LineEcho starts lab.StartLineEcho (greeting first, then "echo " and each
// line) until tb ends, and returns its address.
func LineEcho(tb testing.TB, greeting string) netip.AddrPort {
	tb.Helper()
	s, err := lab.StartLineEcho(greeting)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s.Addr
}

// Hold starts a loopback server that runs serve on each connection and
// keeps it open until the client closes it or tb ends, and returns its
// address.
func Hold(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	s, err := lab.StartTCPFunc(func(c net.Conn) {
		serve(c)
		_, _ = io.Copy(io.Discard, c)
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s.Addr.String()
}

// HostileProxy is a proxy that misbehaves, for RunHostileProxies.
type HostileProxy struct {
	Name string
	// Serve is the proxy's side of each connection.
	Serve func(net.Conn)
	// Class is the failure the dial must end in, within [Min, Max].
	Class    sdk.Class
	Min, Max time.Duration
}

// RunHostileProxies runs each proxy in a subtest: dialer(addr) builds the
// dialer through the proxy at addr, which dials target; the dial must end
// in the proxy's class within its bounds, with the phases of ProxyPhases.
func RunHostileProxies(t *testing.T, proxies []HostileProxy, target netip.AddrPort, dialer func(t *testing.T, addr string, p HostileProxy) sdk.Dialer) {
	for _, p := range proxies {
		t.Run(p.Name, func(t *testing.T) {
			addr := Hold(t, p.Serve)
			d := dialer(t, addr, p)
			start := time.Now()
			resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: target, Host: "echo.test"})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			ProxyPhases(t, resp, addr, target.String())
			if resp.Failure == nil || resp.Failure.Class != p.Class {
				t.Fatalf("failure %+v, want %s", resp.Failure, p.Class)
			}
			if took < p.Min || took > p.Max {
				t.Errorf("took %v, want [%v, %v]", took, p.Min, p.Max)
			}
		})
	}
}

// ProxyPhases checks a proxy dialer's phases: connect to the proxy, then
// (when that succeeded) "proxy", one after the other, with the proxy's
// and the target's addresses in their attrs.
func ProxyPhases(t *testing.T, resp *sdk.DialResponse, proxy, target string) {
	t.Helper()
	if resp.Failure != nil && resp.Failure.Phase == sdk.PhaseConnect {
		if len(resp.Phases) != 1 {
			t.Errorf("phases %+v, want connect alone", resp.Phases)
		}
		return
	}
	if len(resp.Phases) != 2 || resp.Phases[0].Name != sdk.PhaseConnect || resp.Phases[1].Name != "proxy" {
		t.Fatalf("phases %+v, want connect and proxy", resp.Phases)
	}
	c, p := resp.Phases[0], resp.Phases[1]
	if c.Attrs["proxy"] != proxy || c.Attrs["remote"] != proxy || p.Attrs["target"] != target {
		t.Errorf("attrs %v and %v, want proxy %s and target %s", c.Attrs, p.Attrs, proxy, target)
	}
	if !c.OK || p.OK != (resp.Failure == nil) || p.Start < c.Start+c.Duration || c.Duration <= 0 || p.Duration <= 0 {
		t.Errorf("phases %+v, want connect ok, then proxy", resp.Phases)
	}
	if resp.Failure != nil && resp.Failure.Phase != "proxy" {
		t.Errorf("failure in %q, want proxy", resp.Failure.Phase)
	}
}

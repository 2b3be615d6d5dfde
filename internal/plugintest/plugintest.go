// Package plugintest is what the plugins' own tests share: a component
// built from attribute values as the core does, and loopback servers that
// end with the test.
package plugintest

import (
	"io"
	"net"
	"net/netip"
	"testing"

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

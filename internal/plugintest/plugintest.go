// Package plugintest builds a plugin's components from attribute values as
// the core does, for the plugins' own tests.
package plugintest

import (
	"testing"

	"github.com/probe-dev/probe/core/sdk"
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

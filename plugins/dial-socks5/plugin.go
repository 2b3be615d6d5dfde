// Package dialsocks5 is the dial-socks5 dialer plugin: it connects to a
// target through a SOCKS5 proxy (RFC 1928), with optional username and
// password authentication (RFC 1929), and measures the connect to the proxy
// and the proxy's connect to the target as two phases. The tunnel it
// returns is the kernel socket to the proxy, so the handshakes after it run
// through the proxy, in process or in a plugin process alike.
package dialsocks5

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "dial-socks5"

// PhaseProxy is the phase of the proxy reaching the target.
const PhaseProxy = sdk.PhaseProxy

// The failure classes of the proxy phase.
const (
	ClassRefused           sdk.Class = "proxy.refused"            // the proxy declined the request by its rules
	ClassAuth              sdk.Class = "proxy.auth"               // authentication needed, refused or not offered
	ClassTargetUnreachable sdk.Class = "proxy.target_unreachable" // the proxy could not reach the target
	ClassTimeout           sdk.Class = "proxy.timeout"            // the proxy did not answer in time
	ClassProtocol          sdk.Class = "proxy.protocol"           // the proxy closed the connection or did not speak SOCKS5
	ClassError             sdk.Class = "proxy.error"              // the proxy failed otherwise (general failure, unsupported command)
)

// Plugin returns the dial-socks5 plugin: a Dialer.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Connects through a SOCKS5 proxy: the connect to the proxy, then the proxy's to the target.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "proxy", Type: cty.String, Required: true,
				Description: `The proxy's address, an IP literal with an optional port ("127.0.0.1:1080", "[::1]:1080"); the port defaults to 1080.`},
			{Name: "username", Type: cty.String,
				Description: "The username to authenticate with (RFC 1929); unset offers no authentication."},
			{Name: "password", Type: cty.String,
				Description: "The password to authenticate with; give it from a sensitive variable."},
			{Name: "resolve", Type: cty.String, Default: cty.StringVal("local"),
				Description: `Who resolves the target's name: "local" sends the address the pipeline's resolver chose, "remote" sends the target's host name for the proxy to resolve.`},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the two phases together (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewDialer: func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
	}
}

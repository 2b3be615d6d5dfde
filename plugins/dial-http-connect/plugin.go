// Package dialhttpconnect is the dial-http-connect dialer plugin: it
// connects to a target through an HTTP proxy's CONNECT method (RFC 9110
// §9.3.6), with optional basic authentication and, for an https proxy URL,
// TLS to the proxy, and measures the connect to the proxy and the proxy's
// connect to the target as two phases. Through a plain http proxy the
// tunnel it returns is the kernel socket to the proxy, so the handshakes
// after it run through the proxy in process or in a plugin process alike.
package dialhttpconnect

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "dial-http-connect"

// PhaseProxy is the phase of the proxy reaching the target.
const PhaseProxy = sdk.PhaseProxy

// The failure classes of the proxy phase.
const (
	ClassRefused           sdk.Class = "proxy.refused"            // the proxy declined the request by its rules
	ClassAuth              sdk.Class = "proxy.auth"               // authentication needed or refused
	ClassTargetUnreachable sdk.Class = "proxy.target_unreachable" // the proxy could not reach the target
	ClassTimeout           sdk.Class = "proxy.timeout"            // the proxy did not answer in time
	ClassProtocol          sdk.Class = "proxy.protocol"           // the proxy closed the connection or did not speak HTTP
	ClassTLS               sdk.Class = "proxy.tls"                // the TLS handshake with an https proxy failed
	ClassError             sdk.Class = "proxy.error"              // the proxy answered another status
)

// Plugin returns the dial-http-connect plugin: a Dialer.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Connects through an HTTP proxy's CONNECT: the connect to the proxy, then the proxy's to the target.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "proxy", Type: cty.String, Required: true,
				Description: `The proxy's URL, "http://" or "https://" and an IP literal with an optional port ("http://127.0.0.1:3128"); the port defaults to 80 or 443.`},
			{Name: "username", Type: cty.String,
				Description: "The username of basic authentication (Proxy-Authorization); unset sends none."},
			{Name: "password", Type: cty.String,
				Description: "The password of basic authentication; give it from a sensitive variable."},
			{Name: "server_name", Type: cty.String,
				Description: "With an https proxy: the name its certificate is verified against and sent as SNI; unset means its IP address."},
			{Name: "ca_file", Type: cty.String,
				Description: "With an https proxy: a PEM file of the root certificates to trust; unset means the system's roots."},
			{Name: "resolve", Type: cty.String, Default: cty.StringVal("local"),
				Description: `What to ask the proxy for: "local" the address the pipeline's resolver chose, "remote" the target's host name, for the proxy to resolve.`},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the two phases together (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewDialer: func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
	}
}

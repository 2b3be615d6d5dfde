// Package http3handshake is probe's built-in HTTP/3 handshake, plugin
// "http3": it sends one request over the QUIC connection of a quic dialer
// (github.com/quic-go/quic-go's http3 client), measures the exchange as the
// http3 phase with time to first byte and transfer, and checks the status.
package http3handshake

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "http3"

// Phase is the name of the phase the handshake measures.
const Phase = "http3"

// The failure classes of the http3 phase.
const (
	ClassStatus   sdk.Class = "http3.status"   // the status is not one of expect_status
	ClassTimeout  sdk.Class = "http3.timeout"  // no complete response in time
	ClassProtocol sdk.Class = "http3.protocol" // the server broke the protocol or closed the connection
)

// defaultMaxBody is max_body_bytes when unset: 1 MiB.
const defaultMaxBody = 1 << 20

// Plugin returns the http3 plugin: a Handshaker that runs over QUIC.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "HTTP/3 request over a quic dialer's connection, with status check, time to first byte and transfer.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "method", Type: cty.String, Default: cty.StringVal("GET"),
				Description: "Request method."},
			{Name: "path", Type: cty.String, Default: cty.StringVal("/"),
				Description: "Request target: an absolute path with an optional query (\"/healthz?full=1\")."},
			{Name: "host", Type: cty.String,
				Description: ":authority of the request; unset means the target's host, with the port unless it is 443."},
			{Name: "expect_status", Type: cty.List(cty.Number),
				Description: "Accepted status codes (200, 204); unset means 200-399."},
			{Name: "max_body_bytes", Type: cty.Number, Default: cty.NumberIntVal(defaultMaxBody),
				Description: "Most body bytes to read; the rest is not read and does not count in transfer_ms."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the exchange alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
		HandshakeConn: sdk.ConnQUIC,
	}
}

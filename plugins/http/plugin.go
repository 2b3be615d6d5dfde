// Package httphandshake is probe's built-in HTTP handshake, plugin "http": it
// sends one HTTP request over the connection the pipeline established (plain
// TCP, or the TLS connection of a tls handshake, HTTP/2 when its ALPN chose
// h2), measures the exchange as the http phase with time to first byte and
// transfer as sub-timings, and checks the status and, optionally, the body.
package httphandshake

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "http"

// Phase is the name of the phase the handshake measures.
const Phase = "http"

// The failure classes of the http phase.
const (
	ClassStatus       sdk.Class = "http.status"        // the status is not one of expect_status
	ClassBodyMismatch sdk.Class = "http.body_mismatch" // the body does not match expect_body
	ClassTimeout      sdk.Class = "http.timeout"       // no complete response in time
	ClassProtocol     sdk.Class = "http.protocol"      // the server broke the protocol or closed the connection
)

// Plugin returns the http plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "HTTP/1.1 or HTTP/2 request with status and body checks, time to first byte and transfer.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "method", Type: cty.String, Default: cty.StringVal("GET"),
				Description: "Request method."},
			{Name: "path", Type: cty.String, Default: cty.StringVal("/"),
				Description: "Request target: an absolute path with an optional query (\"/healthz?full=1\")."},
			{Name: "host", Type: cty.String,
				Description: "Host header (HTTP/2 :authority); unset means the target's host, with the port unless it is the scheme's default."},
			{Name: "headers", Type: cty.Map(cty.String),
				Description: "Request headers to add or replace (User-Agent defaults to \"probe\")."},
			{Name: "expect_status", Type: cty.List(cty.String),
				Description: "Accepted status codes: codes (200), ranges (\"200-299\") or classes (\"2xx\"); unset means 200-399."},
			{Name: "expect_body", Type: cty.String,
				Description: "Regular expression (RE2) the body must match; unset means the body is not checked."},
			{Name: "max_body_bytes", Type: cty.Number, Default: cty.NumberIntVal(defaultMaxBody),
				Description: "Most body bytes to read; the rest is not read and does not count in transfer_ms. 0 reads no body."},
			{Name: "follow_redirects", Type: cty.Bool, Default: cty.False,
				Description: "Follow redirects (at most 10) that stay on the probed connection: same scheme, host and port."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the exchange alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
			{Name: "propagate", Type: cty.Bool, Default: cty.False,
				Description: "Send a W3C traceparent header (a new trace, sampled) and report its trace_id and span_id: a traced server's spans join the trace probe exports of the attempt, under this phase's span."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

// Package quicdialer is probe's built-in QUIC dialer, plugin "quic": it
// opens a QUIC connection (github.com/quic-go/quic-go) to one address, and
// since QUIC folds the transport and TLS handshakes into one, measures them
// as one phase, quic, with the TLS facts the tls plugin reports, the QUIC
// version, whether 0-RTT was used, and the time to the handshake's
// completion. It hands on the QUIC connection, which is not a socket
// (sdk.ConnQUIC), to a handshake that runs over QUIC, such as http3.
package quicdialer

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "quic"

// Phase is the name of the phase the dialer measures.
const Phase = "quic"

// The failure classes of the quic phase that are not TLS's.
const (
	ClassTimeout  sdk.Class = "quic.timeout"  // no completed handshake in time (nothing answers on the UDP port, or too slowly)
	ClassVersion  sdk.Class = "quic.version"  // the server supports none of the QUIC versions offered
	ClassProtocol sdk.Class = "quic.protocol" // the server closed the connection or broke the protocol
	ClassError    sdk.Class = "quic.error"    // any other error (the local socket)
)

// Plugin returns the quic plugin: a Dialer that hands on a QUIC connection.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "QUIC handshake (transport and TLS 1.3 together) with TLS facts, QUIC version and 0-RTT; hands on the QUIC connection.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "server_name", Type: cty.String,
				Description: "Name to send as SNI and verify the certificate against; unset means the target's host (an IP literal is verified against its IP SANs and sends no SNI)."},
			{Name: "alpn", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("h3")}),
				Description: "Application protocols to offer, in order of preference; QUIC needs one."},
			{Name: "ca_file", Type: cty.String,
				Description: "PEM file of the root certificates to trust; unset means the system's roots."},
			{Name: "insecure_skip_verify", Type: cty.Bool, Default: cty.False,
				Description: "Complete the handshake even when the certificate does not verify; the result is still reported."},
			{Name: "zero_rtt", Type: cty.Bool, Default: cty.False,
				Description: "Keep the TLS session tickets of this dialer's connections and resume with 0-RTT where the server allows: the first attempt makes a full handshake, the next ones resume."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the handshake alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewDialer:  func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
		DialerConn: sdk.ConnQUIC,
	}
}

// Package udppayload is probe's built-in datagram handshake, plugin
// "udp-payload": over the connected UDP socket of dial-udp it sends one
// datagram, waits for one reply, checks it against a regular expression and
// measures the round trip as the udp phase. A DNS query, an NTP request or
// a game server's status query are such payloads.
package udppayload

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "udp-payload"

// Phase is the name of the phase the handshake measures.
const Phase = "udp"

// The failure classes of the udp phase.
const (
	ClassRefused       sdk.Class = "udp.refused"        // ICMP port unreachable: nothing listens on the port
	ClassTimeout       sdk.Class = "udp.timeout"        // no reply in time
	ClassUnreachable   sdk.Class = "udp.unreachable"    // ICMP host or network unreachable
	ClassReplyMismatch sdk.Class = "udp.reply_mismatch" // the reply does not match expect
	ClassError         sdk.Class = "udp.error"          // any other socket error
)

// Plugin returns the udp-payload plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Sends one datagram and times the reply, checked against a regular expression.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "payload", Type: cty.String,
				Description: "Datagram to send, as text (its UTF-8 bytes); set payload or payload_hex."},
			{Name: "payload_hex", Type: cty.String,
				Description: "Datagram to send, in hexadecimal (\"12340100...\"); set payload or payload_hex."},
			{Name: "expect", Type: cty.String,
				Description: "Regular expression (RE2) the reply must match, each byte one character so that \\xHH matches the byte HH; unset accepts any reply."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the wait for the reply (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

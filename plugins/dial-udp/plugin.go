// Package dialudp is probe's built-in UDP dialer, plugin "dial-udp": it
// creates a UDP socket connected to one address, so that the handshakes
// after it (udp-payload) send to that address alone and receive from it
// alone, the kernel reporting an ICMP port unreachable as a refusal.
package dialudp

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "dial-udp"

// The failure classes of dial-udp and of the handshakes over its sockets.
const (
	ClassUnreachable sdk.Class = "udp.unreachable" // no route to the host or network
	ClassTimeout     sdk.Class = "udp.timeout"     // the attempt's deadline passed before the socket was made
	ClassError       sdk.Class = "udp.error"       // any other socket error
)

// Plugin returns the dial-udp plugin: a Dialer.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Connected UDP socket for datagram handshakes (udp-payload); sends nothing itself.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "source", Type: cty.String,
				Description: "Local IP address to send from; unset lets the kernel choose."},
		}},
		NewDialer: func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
	}
}

// Package icmpecho is probe's built-in ICMP echo dialer, plugin "icmp": it
// sends `count` echo requests to the address (IPv4 or IPv6) from an
// unprivileged ping socket where the system allows one, else a raw socket,
// and reports the round trips, the replies' TTL or hop limit, their
// sequence numbers and the loss as one phase, icmp. It makes no connection,
// so a pipeline with it takes no handshakes (sdk.ConnNone).
package icmpecho

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "icmp"

// Phase is the name of the phase the dialer measures.
const Phase = "icmp"

// The failure classes of the icmp phase.
const (
	ClassTimeout      sdk.Class = "icmp.timeout"       // no echo reply in time
	ClassUnreachable  sdk.Class = "icmp.unreachable"   // no route, or a router answered destination unreachable
	ClassNotPermitted sdk.Class = "icmp.not_permitted" // the system allows this process no ping socket of the kind asked
	ClassError        sdk.Class = "icmp.error"         // any other socket error
)

// Plugin returns the icmp plugin: a Dialer that hands on no connection.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "ICMP echo (ping): round trips, TTL or hop limit and loss over count echoes; takes no handshakes.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "count", Type: cty.Number, Default: cty.NumberIntVal(1),
				Description: "Echo requests per attempt, 1 to 1000."},
			{Name: "interval", Type: cty.String, Default: cty.StringVal("1s"),
				Description: "Time between two echo requests of an attempt (\"200ms\"), at least 1ms."},
			{Name: "size", Type: cty.Number, Default: cty.NumberIntVal(56),
				Description: "Payload bytes of each echo request, 0 to 65000."},
			{Name: "socket", Type: cty.String, Default: cty.StringVal("auto"),
				Description: "\"unprivileged\" (a ping socket, allowed by net.ipv4.ping_group_range), \"raw\" (needs root or CAP_NET_RAW), or \"auto\": unprivileged where allowed, else raw."},
			{Name: "source", Type: cty.String,
				Description: "Local IP address to send from; unset lets the kernel choose."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the phase alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewDialer:  func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
		DialerConn: sdk.ConnNone,
	}
}

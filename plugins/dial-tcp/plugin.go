// Package dialtcp is probe's built-in TCP dialer, plugin "dial-tcp": it
// connects to one address, from a chosen source address, port range and
// firewall mark if asked, measures the connect phase and reports the local
// and remote addresses and the kernel's smoothed round-trip time.
package dialtcp

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "dial-tcp"

// Plugin returns the dial-tcp plugin: a Dialer.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.2.0",
			Description: "TCP connect with local and remote address and the kernel's RTT estimate.",
		},
		DialerSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "source", Type: cty.String,
				Description: "Local IP address to connect from; unset lets the kernel choose."},
			{Name: "source_port", Type: cty.String,
				Description: "Local port, or range of ports (\"40000-40099\"), to connect from; a port in use is skipped. Unset lets the kernel choose."},
			{Name: "fwmark", Type: cty.Number, Default: cty.NumberIntVal(0),
				Description: "Firewall mark (SO_MARK) for policy routing and netfilter, 1 to 4294967295; 0 sets none. Needs CAP_NET_ADMIN."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the connect alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
			{Name: "clock", Type: cty.String, Default: cty.StringVal(sdk.ClockProcess),
				Description: "Where the connect phase's duration comes from: \"process\", probe's clock around the connect, or \"kernel\", the kernel's round trip of the handshake (TCP_INFO), which a busy machine's wait to run probe does not lengthen."},
		}},
		NewDialer: func(cfg cty.Value) (sdk.Dialer, error) { return New(cfg) },
	}
}

// Package dnsmiekg is the dns-miekg resolver plugin: it resolves names by
// querying explicit DNS servers with github.com/miekg/dns, failing over from
// one server to the next when a server does not answer, and reports the
// server, rcode, TTL and round trip of the answer.
package dnsmiekg

import (
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Name is the plugin's name in pipeline files.
const Name = "dns-miekg"

// Plugin returns the dns-miekg plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Resolves names by querying explicit DNS servers (miekg/dns).",
		},
		ResolverSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{
				Name:        "servers",
				Type:        cty.List(cty.String),
				Required:    true,
				Description: `The servers to query in order, as IP literals with an optional port ("9.9.9.9:53", "[2620:fe::fe]:53"); the port defaults to 53.`,
			},
			{
				Name:        "transport",
				Type:        cty.String,
				Default:     cty.StringVal("udp"),
				Description: `How to send queries: "udp" or "tcp".`,
			},
			{
				Name:        "timeout",
				Type:        cty.String,
				Default:     cty.StringVal("2s"),
				Description: "How long to wait for each query's answer before failing over to the next server.",
			},
		}},
		NewResolver: func(cfg cty.Value) (sdk.Resolver, error) { return New(cfg) },
	}
}

// Package dnssystem is the dns-system resolver plugin: it resolves names the
// way the operating system does, with the C library's getaddrinfo(3)
// (honouring nsswitch and the like) or with Go's built-in resolver, and says
// which one answered.
package dnssystem

import (
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Name is the plugin's name in pipeline files.
const Name = "dns-system"

// Plugin returns the dns-system plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Resolves names with the operating system's resolver.",
		},
		ResolverSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{
				Name:        "network",
				Type:        cty.String,
				Default:     cty.StringVal("ip"),
				Description: `Which addresses to ask for: "ip" (IPv4 and IPv6), "ip4" or "ip6".`,
			},
			{
				Name:        "prefer_go",
				Type:        cty.Bool,
				Default:     cty.False,
				Description: "Use Go's built-in DNS resolver instead of the C library's getaddrinfo(3).",
			},
			{
				Name:        "timeout",
				Type:        cty.String,
				Description: "How long a resolution may take; unset, only the attempt's timeout applies.",
			},
		}},
		NewResolver: func(cfg cty.Value) (sdk.Resolver, error) { return New(cfg) },
	}
}

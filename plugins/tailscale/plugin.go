// Package tailscale is probe's tailnet plugin, "tailscale": a resolver that
// answers MagicDNS names and checks tailnet addresses against the peer list,
// and a dialer that reaches peers through the tailnet. It speaks to the local
// tailscaled through its LocalAPI, or joins the tailnet itself as an embedded
// userspace node (tsnet). It ships as its own binary, probe-plugin-tailscale,
// so that tailscale.com stays out of probe.
package tailscale

import (
	"slices"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "tailscale"

// The plugin's failure classes.
const (
	// ClassNotAPeer: the address, or the address a name stands for, is no
	// node of the tailnet. Nothing is dialed.
	ClassNotAPeer sdk.Class = "tailscale.not_a_peer"
	// ClassOffline: the peer is not connected to the control plane.
	ClassOffline sdk.Class = "tailscale.offline"
	// ClassUnavailable: the tailnet node probe speaks through is not
	// running: tailscaled is down or logged out, or the embedded node could
	// not join.
	ClassUnavailable sdk.Class = "tailscale.unavailable"
	// ClassTimeout: the node did not answer, or did not join, in time.
	ClassTimeout sdk.Class = "tailscale.timeout"
	// ClassPingFailed: the disco ping got no answer from the peer.
	ClassPingFailed sdk.Class = "tailscale.ping_failed"
)

// PhasePing is the phase of the disco ping the resolver sends when ping is
// set.
const PhasePing = "ping"

// backendAttrs are the attributes that choose and configure the tailnet node,
// shared by the resolver and the dialer.
var backendAttrs = []sdk.Attribute{
	{Name: "backend", Type: cty.String, Default: cty.StringVal(backendLocal),
		Description: "\"local\": the local tailscaled, through its LocalAPI; \"tsnet\": an embedded userspace node that joins the tailnet itself."},
	{Name: "socket", Type: cty.String,
		Description: "backend \"local\": path of tailscaled's LocalAPI socket; unset means the platform's default."},
	{Name: "control_url", Type: cty.String,
		Description: "backend \"tsnet\": the coordination server's URL (Headscale's); unset means Tailscale's."},
	{Name: "auth_key_env", Type: cty.String,
		Description: "backend \"tsnet\": the environment variable holding the auth key used to join; unset means TS_AUTHKEY. The key is never logged."},
	{Name: "state_dir", Type: cty.String,
		Description: "backend \"tsnet\": the node's state directory; unset means <user config dir>/probe/tailscale-<hostname>."},
	{Name: "hostname", Type: cty.String,
		Description: "backend \"tsnet\": the node's name on the tailnet; unset means \"probe\"."},
	{Name: "ephemeral", Type: cty.Bool, Default: cty.False,
		Description: "backend \"tsnet\": join as an ephemeral node whose identity lives in memory only and leaves the tailnet after probe exits."},
}

// Plugin returns the tailscale plugin: a Resolver and a Dialer.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Tailnet resolver (MagicDNS names, peer checks of 100.64.0.0/10 and fd7a:115c:a1e0::/48) and dialer, through tailscaled or an embedded tsnet node.",
		},
		ResolverSchema: sdk.Schema{Attributes: append([]sdk.Attribute{
			{Name: "ping", Type: cty.Bool, Default: cty.False,
				Description: "Send a disco ping to the peer after resolving, measured as its own phase \"ping\": latency and the path it took."},
		}, backendAttrs...)},
		NewResolver:  func(cfg cty.Value) (sdk.Resolver, error) { return NewResolver(cfg) },
		DialerSchema: sdk.Schema{Attributes: slices.Clone(backendAttrs)},
		NewDialer:    func(cfg cty.Value) (sdk.Dialer, error) { return NewDialer(cfg) },
	}
}

package main

import (
	"github.com/probe-dev/probe/core/sdk"
	dialtcp "github.com/probe-dev/probe/plugins/dial-tcp"
	dnsmiekg "github.com/probe-dev/probe/plugins/dns-miekg"
	dnssystem "github.com/probe-dev/probe/plugins/dns-system"
	httphandshake "github.com/probe-dev/probe/plugins/http"
	tlshandshake "github.com/probe-dev/probe/plugins/tls"
)

// builtins lists the plugins compiled into probe. This is the one place that
// names them.
func builtins() map[string]*sdk.Plugin {
	out := map[string]*sdk.Plugin{}
	for _, p := range []*sdk.Plugin{
		dnssystem.Plugin(),
		dnsmiekg.Plugin(),
		dialtcp.Plugin(),
		tlshandshake.Plugin(),
		httphandshake.Plugin(),
	} {
		out[p.Info.Name] = p
	}
	return out
}

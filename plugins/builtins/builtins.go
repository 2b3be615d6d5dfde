// Package builtins lists probe's built-in plugins, the ones compiled into
// the probe binary: the one place that names them. cmd/probe, internal/ and
// a Go service embedding probe import it and hand the list to the core
// (config.Options.Plugins, pluginhost.LoaderOptions.Builtins); the core
// itself never imports a plugin.
package builtins

import (
	"github.com/probe-dev/probe/core/sdk"
	dialhttpconnect "github.com/probe-dev/probe/plugins/dial-http-connect"
	dialsocks5 "github.com/probe-dev/probe/plugins/dial-socks5"
	dialtcp "github.com/probe-dev/probe/plugins/dial-tcp"
	dialudp "github.com/probe-dev/probe/plugins/dial-udp"
	dnsmiekg "github.com/probe-dev/probe/plugins/dns-miekg"
	dnssystem "github.com/probe-dev/probe/plugins/dns-system"
	grpchealth "github.com/probe-dev/probe/plugins/grpc-health"
	httphandshake "github.com/probe-dev/probe/plugins/http"
	http3handshake "github.com/probe-dev/probe/plugins/http3"
	icmpecho "github.com/probe-dev/probe/plugins/icmp"
	quicdialer "github.com/probe-dev/probe/plugins/quic"
	sshhandshake "github.com/probe-dev/probe/plugins/ssh"
	"github.com/probe-dev/probe/plugins/starttls"
	tlshandshake "github.com/probe-dev/probe/plugins/tls"
	udppayload "github.com/probe-dev/probe/plugins/udp-payload"
)

// Plugins returns the built-in plugins by name, each made anew.
func Plugins() map[string]*sdk.Plugin {
	out := map[string]*sdk.Plugin{}
	for _, p := range []*sdk.Plugin{
		dnssystem.Plugin(),
		dnsmiekg.Plugin(),
		dialtcp.Plugin(),
		dialsocks5.Plugin(),
		dialhttpconnect.Plugin(),
		tlshandshake.Plugin(),
		httphandshake.Plugin(),
		icmpecho.Plugin(),
		grpchealth.Plugin(),
		quicdialer.Plugin(),
		http3handshake.Plugin(),
		sshhandshake.Plugin(),
		dialudp.Plugin(),
		udppayload.Plugin(),
		starttls.Plugin(),
	} {
		out[p.Info.Name] = p
	}
	return out
}

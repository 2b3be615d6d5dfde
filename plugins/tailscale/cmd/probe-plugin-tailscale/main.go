// Command probe-plugin-tailscale serves probe's tailscale plugin: a resolver
// and a dialer for tailnet addresses and MagicDNS names. probe starts it;
// see plugins/tailscale/README.md.
package main

import (
	"github.com/probe-dev/probe/core/sdk/serve"
	"github.com/probe-dev/probe/plugins/tailscale"
)

func main() {
	serve.Serve(tailscale.Plugin())
}

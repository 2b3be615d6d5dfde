// Package serve is a plugin binary's entry point: its main calls Serve with
// every plugin the binary provides.
//
//	func main() {
//		serve.Serve(&sdk.Plugin{Info: sdk.Info{Name: "banner", Version: "1.0.0"}, ...})
//	}
//
// It is a package of its own beside core/sdk because the sdk is the
// contract a plugin author reads, and knows nothing of how probe talks to a
// plugin process (probe.v1 over go-plugin and gRPC, core/pluginrpc): a new
// transport changes what Serve runs, not what a plugin imports.
package serve

import (
	"github.com/probe-dev/probe/core/pluginrpc"
	"github.com/probe-dev/probe/core/sdk"
)

// Serve serves plugins from a plugin binary. It returns when probe ends the
// process's session; run by hand, the binary says it is a plugin and exits
// with status 1. sdk.Logger writes to probe from then on.
func Serve(plugins ...*sdk.Plugin) {
	pluginrpc.Serve(plugins...)
}

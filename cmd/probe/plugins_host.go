package main

import (
	"maps"
	"os"
	"slices"

	"github.com/probe-dev/probe/core/pluginhost"
	sdkserve "github.com/probe-dev/probe/core/sdk/serve" // cmd/probe has a func serve
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/spf13/cobra"
)

// serveBuiltinsCmd is the hidden command under which probe serves its
// built-in plugins to itself, out of process.
const serveBuiltinsCmd = "serve-builtin-plugins"

func newServeBuiltinsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    serveBuiltinsCmd,
		Short:  "Serve the built-in plugins as a plugin binary (started by probe --isolate)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			sdkserve.Serve(slices.Collect(maps.Values(builtins.Plugins()))...)
		},
	}
}

// buildHints say how to build the plugins of probe's repository that are
// binaries of their own, for when one is not found.
var buildHints = map[string]string{
	"tailscale": "`make build` in probe's repository (bin/probe-plugin-tailscale, next to bin/probe) " +
		"or `cd plugins/tailscale && go build -o ~/.probe/plugins/probe-plugin-tailscale ./cmd/probe-plugin-tailscale` " +
		"(plugins/tailscale/README.md)",
}

// newLoader returns the plugin loader of a command: the built-ins, in
// process or, when isolate is set, served by probe's own binary in another
// process; any other plugin a binary. The caller closes it.
func newLoader(isolate bool) *pluginhost.Loader {
	opts := pluginhost.LoaderOptions{Log: logger(), Builtins: builtins.Plugins(), Isolate: isolate, BuildHints: buildHints}
	if self, err := os.Executable(); err == nil {
		opts.BuiltinBinary = &pluginhost.Binary{Name: "builtin", Path: self, Args: []string{serveBuiltinsCmd}}
	}
	return pluginhost.NewLoader(opts)
}

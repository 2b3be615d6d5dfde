package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
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
			plugins := builtins.Plugins()
			sdk.Serve(slices.Collect(maps.Values(plugins))...)
		},
	}
}

// buildHints says how to build the plugins of probe's repository that are
// binaries of their own, for when one is not found.
var buildHints = map[string]string{
	"tailscale": "`make build` in probe's repository (bin/probe-plugin-tailscale, next to bin/probe) " +
		"or `cd plugins/tailscale && go build -o ~/.probe/plugins/probe-plugin-tailscale ./cmd/probe-plugin-tailscale` " +
		"(plugins/tailscale/README.md)",
}

// plugins finds the plugins of a run and owns the processes of those that
// run out of process. It is the config loader's PluginLoader.
type plugins struct {
	log     hclog.Logger
	isolate bool // run every built-in out of process
	host    *pluginhost.Host
}

// builtins returns the built-in plugins a file may name without a plugin
// block: in process, or served by this binary in another process when
// isolating.
func (p *plugins) builtins() (map[string]*sdk.Plugin, error) {
	if !p.isolate {
		return builtins.Plugins(), nil
	}
	remote, err := p.loadBuiltins(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]*sdk.Plugin{}
	for _, pl := range remote {
		out[pl.Info.Name] = pl
	}
	return out, nil
}

// loadBuiltins starts probe serving its built-ins, with the variables env
// names in its environment beside pluginhost.BaseEnv.
func (p *plugins) loadBuiltins(env []string) ([]*sdk.Plugin, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find probe's own binary: %w", err)
	}
	h, err := p.hostStarted()
	if err != nil {
		return nil, err
	}
	return h.Load(pluginhost.Binary{Name: "builtin", Path: self, Args: []string{serveBuiltinsCmd}, Env: env})
}

func (p *plugins) hostStarted() (*pluginhost.Host, error) {
	if p.host == nil {
		h, err := pluginhost.New(p.log)
		if err != nil {
			return nil, err
		}
		p.host = h
	}
	return p.host, nil
}

// LoadPlugin implements config.PluginLoader: a built-in with isolate = true
// runs out of process; any other name is a plugin binary, from the block's
// source or found on the search path.
func (p *plugins) LoadPlugin(d config.PluginDecl) (*sdk.Plugin, error) {
	if _, builtin := builtins.Plugins()[d.Name]; builtin && d.Source == "" {
		if !d.Isolate && !p.isolate {
			return builtins.Plugins()[d.Name], nil
		}
		remote, err := p.loadBuiltins(d.Env)
		if err != nil {
			return nil, err
		}
		return pick(remote, d.Name, "probe "+serveBuiltinsCmd)
	}
	path := d.SourcePath()
	var err error
	if path == "" {
		path, err = pluginhost.Find(d.Name)
		if nf := (*pluginhost.NotFoundError)(nil); errors.As(err, &nf) {
			nf.Build = buildHints[d.Name]
		}
	} else {
		err = pluginhost.CheckBinary(path)
	}
	if err != nil {
		return nil, err
	}
	h, err := p.hostStarted()
	if err != nil {
		return nil, err
	}
	served, err := h.Load(pluginhost.Binary{Name: d.Name, Path: path, SHA256: d.SHA256, Env: d.Env})
	if err != nil {
		return nil, err
	}
	return pick(served, d.Name, path)
}

// pick returns the plugin called name among those a binary serves.
func pick(served []*sdk.Plugin, name, binary string) (*sdk.Plugin, error) {
	var names []string
	for _, pl := range served {
		if pl.Info.Name == name {
			return pl, nil
		}
		names = append(names, pl.Info.Name)
	}
	return nil, fmt.Errorf("%s serves no plugin %q, only %v", binary, name, names)
}

// Close stops every plugin process.
func (p *plugins) Close() error {
	if p.host == nil {
		return nil
	}
	return p.host.Close()
}

var _ config.PluginLoader = (*plugins)(nil)

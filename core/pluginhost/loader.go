package pluginhost

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/sdk"
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// Log is the logger plugin processes log through, each under
	// "plugin.NAME"; nil for none.
	Log hclog.Logger
	// Builtins are the plugins compiled into the program, by name
	// (plugins/builtins.Plugins()): a file names them without a plugin
	// block, and they run in process unless isolated.
	Builtins map[string]*sdk.Plugin
	// Isolate runs every built-in out of process, as probe's --isolate does.
	Isolate bool
	// BuiltinBinary is the binary that serves the built-ins out of process,
	// for Isolate and a plugin block's isolate = true: probe runs itself as
	// `probe serve-builtin-plugins`. A Go service runs its own binary the
	// same way: started with an argument of its choice, it calls
	// serve.Serve with the built-ins. Nil: a built-in cannot be isolated.
	BuiltinBinary *Binary
	// BuildHints say, by plugin name, how to build a plugin binary that is
	// not found; the error advises it first.
	BuildHints map[string]string
}

// Loader loads the plugins of pipeline files by the rules of DESIGN §5: a
// built-in runs in process, or out of process when isolated; any other name
// is a plugin binary, the plugin block's source or else probe-plugin-NAME
// on the search path (SearchPath), checked (CheckBinary) and, when the block
// gives one, its sha256 pin checked before it runs. It is a
// config.PluginLoader: hand it to config.Options with the plugins Builtins
// returns. It owns the plugin processes it starts: Close it when the files
// it loaded are closed, also on Ctrl-C.
type Loader struct {
	opts LoaderOptions

	mu   sync.Mutex
	host *Host // started on first use
}

// NewLoader returns a loader; it starts nothing until a plugin needs a
// process.
func NewLoader(opts LoaderOptions) *Loader {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	return &Loader{opts: opts}
}

// Builtins returns the built-in plugins a file may name without a plugin
// block, for config.Options.Plugins: in process, or, when isolating every
// built-in, served by BuiltinBinary in another process.
func (l *Loader) Builtins() (map[string]*sdk.Plugin, error) {
	if !l.opts.Isolate {
		return maps.Clone(l.opts.Builtins), nil
	}
	remote, err := l.loadBuiltins(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]*sdk.Plugin{}
	for _, pl := range remote {
		out[pl.Info.Name] = pl
	}
	return out, nil
}

// loadBuiltins starts BuiltinBinary, with the variables env names in its
// environment beside BaseEnv.
func (l *Loader) loadBuiltins(env []string) ([]*sdk.Plugin, error) {
	if l.opts.BuiltinBinary == nil {
		return nil, errors.New("no binary serves the built-in plugins out of process here, so they cannot be isolated")
	}
	h, err := l.started()
	if err != nil {
		return nil, err
	}
	b := *l.opts.BuiltinBinary
	b.Env = env
	return h.Load(b)
}

// started returns the loader's host, starting it on first use.
func (l *Loader) started() (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.host == nil {
		h, err := New(l.opts.Log)
		if err != nil {
			return nil, err
		}
		l.host = h
	}
	return l.host, nil
}

// LoadPlugin implements config.PluginLoader: a built-in with isolate = true
// runs out of process; any other name is a plugin binary, from the block's
// source or found on the search path.
func (l *Loader) LoadPlugin(d config.PluginDecl) (*sdk.Plugin, error) {
	if p, builtin := l.opts.Builtins[d.Name]; builtin && d.Source == "" {
		if !d.Isolate && !l.opts.Isolate {
			return p, nil
		}
		remote, err := l.loadBuiltins(d.Env)
		if err != nil {
			return nil, err
		}
		b := l.opts.BuiltinBinary
		return pick(remote, d.Name, strings.Join(append([]string{b.Path}, b.Args...), " "))
	}
	path := d.SourcePath()
	var err error
	if path == "" {
		path, err = Find(d.Name)
		if nf := (*NotFoundError)(nil); errors.As(err, &nf) {
			nf.Build = l.opts.BuildHints[d.Name]
		}
	} else {
		err = CheckBinary(path)
	}
	if err != nil {
		return nil, err
	}
	h, err := l.started()
	if err != nil {
		return nil, err
	}
	served, err := h.Load(Binary{Name: d.Name, Path: path, SHA256: d.SHA256, Env: d.Env})
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

// Close stops every plugin process the loader started.
func (l *Loader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.host == nil {
		return nil
	}
	return l.host.Close()
}

var _ config.PluginLoader = (*Loader)(nil)

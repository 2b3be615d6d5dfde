// Package pluginhost runs plugin binaries and loads plugins, so that the
// engine cannot tell a plugin in another process from one built in. It
// launches each binary once per run through hashicorp/go-plugin (gRPC only)
// with a minimal environment (BaseEnv and the variables its block names),
// checks sha256 pins before a binary runs, fails only the attempts in
// flight when a plugin crashes or hangs (plugin.crashed), restarts it with
// backoff, and leaves no process or socket file behind. Loader applies the
// rules of loading (built in, isolated, plugin binary, pin, search path)
// for a pipeline file, as probe's commands and a Go service embedding probe
// do. The protocol itself, both sides, is core/pluginrpc's.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/pluginrpc"
	"github.com/probe-dev/probe/core/sdk"
)

// Binary is a plugin binary to run.
type Binary struct {
	// Name names the plugin in logs ("plugin.NAME") and errors.
	Name string
	// Path is the executable.
	Path string
	// Args are its arguments (none for a third-party plugin).
	Args []string
	// SHA256 is the hex digest the file must have, checked before it runs;
	// empty for no pin.
	SHA256 string
	// Env names the variables of probe's environment the process gets
	// besides those of BaseEnv (a plugin block's env, such as TS_AUTHKEY).
	Env []string
}

// BaseEnv lists the variables of probe's environment that every plugin
// process gets, when they are set: what any program needs to find files,
// speak the user's language and tell the time, and where Go finds the system's
// root certificates, so that a TLS handshake out of process trusts what one
// in process does. Nothing else of probe's environment reaches a plugin:
// not credentials, not PROBE_VAR_ variables.
var BaseEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// key identifies the process that runs b. The pin and the environment are
// part of it, so that a pinned Load never reuses a process started without
// that pin, nor one Load's variables reach another's plugin.
func (b Binary) key() string {
	return strings.Join(slices.Concat([]string{b.Path, strings.ToLower(b.SHA256)}, b.Args, []string{"env"}, b.Env), "\x00")
}

// environ returns the environment of b's process: the variables of BaseEnv
// and Env that are set in probe's, each once.
func (b Binary) environ() []string {
	var env []string
	seen := map[string]bool{}
	for _, name := range slices.Concat(BaseEnv, b.Env) {
		if v, ok := os.LookupEnv(name); ok && !seen[name] {
			seen[name] = true
			env = append(env, name+"="+v)
		}
	}
	return env
}

// Host runs plugin binaries for one run of probe. Close it when the run
// ends, also on Ctrl-C.
type Host struct {
	log hclog.Logger
	// dir holds go-plugin's unix sockets; removed by Close.
	dir string

	mu     sync.Mutex
	procs  map[string]*process
	closed bool
}

// New returns a host that logs through log.
func New(log hclog.Logger) (*Host, error) {
	dir, err := os.MkdirTemp("", "probe-plugins-")
	if err != nil {
		return nil, fmt.Errorf("plugin socket directory: %w", err)
	}
	return &Host{log: log, dir: dir, procs: map[string]*process{}}, nil
}

// Load starts b (once per host: a second Load of the same binary with the
// same pin shares the process), asks it what it serves, and returns its
// plugins. Their
// constructors configure instances in the plugin process; their components
// call it.
func (h *Host) Load(b Binary) ([]*sdk.Plugin, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("plugin host is closed")
	}
	p := h.procs[b.key()]
	if p == nil {
		p = &process{host: h, bin: b, log: h.log.ResetNamed("plugin." + b.Name)}
		h.procs[b.key()] = p
	}
	h.mu.Unlock()

	ctx, cancel := withTimeout()
	defer cancel()
	c, err := p.Client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.Plugins(p)
	if err != nil {
		return nil, fmt.Errorf("plugin binary %s: %w", b.Path, err)
	}
	return out, nil
}

// Ping asks the running process of b, loaded before, whether it is
// healthy: go-plugin's gRPC health service (grpc.health.v1, service
// "plugin"), which every plugin binary serves beside probe.v1.
func (h *Host) Ping(b Binary) error {
	h.mu.Lock()
	p := h.procs[b.key()]
	h.mu.Unlock()
	if p == nil {
		return fmt.Errorf("plugin %s is not loaded", b.Name)
	}
	p.mu.Lock()
	client := p.client
	p.mu.Unlock()
	if client == nil || client.Exited() {
		return fmt.Errorf("plugin %s is not running", b.Name)
	}
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("plugin %s: %w", b.Name, err)
	}
	if err := rpc.Ping(); err != nil {
		return fmt.Errorf("plugin %s: health check: %w", b.Name, err)
	}
	return nil
}

// Pids returns the process ids of the running plugin processes.
func (h *Host) Pids() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var pids []int
	for _, p := range h.procs {
		if pid := p.pid(); pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Close kills every plugin process and removes the socket directory.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	procs := h.procs
	h.procs = map[string]*process{}
	h.mu.Unlock()
	// At once: each may wait its grace for a plugin that does not exit.
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.kill)
	}
	wg.Wait()
	return os.RemoveAll(h.dir)
}

// withTimeout is the context of the host's own calls (start, describe),
// which no attempt bounds.
func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), pluginrpc.CallTimeout)
}

var _ pluginrpc.Process = (*process)(nil)

package tailscale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/zclconf/go-cty/cty"
	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"

	"github.com/probe-dev/probe/core/sdk"
)

// The backends: which tailnet node probe speaks through.
const (
	backendLocal = "local"
	backendTSNet = "tsnet"
)

// Defaults of the tsnet backend's attributes.
const (
	defaultAuthKeyEnv = "TS_AUTHKEY"
	defaultHostname   = "probe"
)

// nodeConfig says which tailnet node to speak through. It holds the name of
// the auth key's environment variable, never the key.
type nodeConfig struct {
	backend    string
	socket     string // local: LocalAPI socket, "" for the platform's default
	controlURL string // tsnet: "" for Tailscale's
	authKeyEnv string // tsnet
	stateDir   string // tsnet: "" for the default under the user's config dir
	hostname   string // tsnet
	ephemeral  bool   // tsnet
}

var (
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// parseNodeConfig reads and checks the backend attributes of cfg. An
// attribute of the other backend is an error rather than silently ignored.
func parseNodeConfig(cfg cty.Value) (nodeConfig, error) {
	c := nodeConfig{
		backend:    sdk.String(cfg, "backend"),
		socket:     sdk.String(cfg, "socket"),
		controlURL: sdk.String(cfg, "control_url"),
		authKeyEnv: sdk.String(cfg, "auth_key_env"),
		stateDir:   sdk.String(cfg, "state_dir"),
		hostname:   sdk.String(cfg, "hostname"),
		ephemeral:  sdk.Bool(cfg, "ephemeral"),
	}
	switch c.backend {
	case backendLocal:
		tsnetOnly := map[string]bool{"control_url": c.controlURL != "", "auth_key_env": c.authKeyEnv != "",
			"state_dir": c.stateDir != "", "hostname": c.hostname != "", "ephemeral": c.ephemeral}
		for _, a := range []string{"control_url", "auth_key_env", "state_dir", "hostname", "ephemeral"} {
			if tsnetOnly[a] {
				return c, otherBackend(a, backendTSNet)
			}
		}
	case backendTSNet:
		if c.socket != "" {
			return c, otherBackend("socket", backendLocal)
		}
		if c.controlURL != "" {
			if u, err := url.Parse(c.controlURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c, sdk.AttrErrorf("control_url", "Invalid control URL",
					"control_url must be an http or https URL such as \"https://headscale.example.com\", got %q.", c.controlURL)
			}
		}
		if c.authKeyEnv == "" {
			c.authKeyEnv = defaultAuthKeyEnv
		} else if !envName.MatchString(c.authKeyEnv) {
			return c, sdk.AttrErrorf("auth_key_env", "Invalid environment variable name",
				"auth_key_env names the environment variable that holds the auth key, such as \"TS_AUTHKEY\"; got %q.", c.authKeyEnv)
		}
		if c.hostname == "" {
			c.hostname = defaultHostname
		} else if !hostName.MatchString(c.hostname) {
			return c, sdk.AttrErrorf("hostname", "Invalid hostname",
				"hostname must be one DNS label (letters, digits and inner hyphens, at most 63), got %q.", c.hostname)
		}
	default:
		return c, sdk.AttrErrorf("backend", "Invalid backend", "backend must be %q or %q, got %q.", backendLocal, backendTSNet, c.backend)
	}
	return c, nil
}

func otherBackend(attr, backend string) error {
	return sdk.AttrErrorf(attr, "Attribute of another backend",
		"%s applies to backend = %q only; remove it or set backend = %q.", attr, backend, backend)
}

// node is the tailnet node probe speaks through.
type node interface {
	// client returns the node's LocalAPI client, first joining the tailnet
	// when the node is embedded and not running yet.
	client(ctx context.Context) (*local.Client, error)
	// dialUser connects to addr through the node's userspace network stack.
	// The connection has no kernel socket. addr must be a confirmed peer's:
	// a dial to any other address falls through to the host's network.
	dialUser(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	close() error
}

// nodes holds the nodes in use, one per configuration, so that a resolver
// and a dialer configured alike share one embedded node.
var nodes = struct {
	sync.Mutex
	m map[nodeConfig]*sharedNode
}{m: map[nodeConfig]*sharedNode{}}

// sharedNode is a node with the count of the components using it.
type sharedNode struct {
	node
	cfg  nodeConfig
	refs int
}

// acquire returns the node of configuration c, creating it (without touching
// the network) when no component uses it yet.
func acquire(c nodeConfig) *sharedNode {
	nodes.Lock()
	defer nodes.Unlock()
	n := nodes.m[c]
	if n == nil {
		n = &sharedNode{cfg: c}
		if c.backend == backendTSNet {
			n.node = &tsnetNode{cfg: c}
		} else {
			n.node = &localNode{lc: &local.Client{Socket: c.socket, UseSocketOnly: c.socket != ""}}
		}
		nodes.m[c] = n
	}
	n.refs++
	return n
}

// release ends one component's use of n and closes n after the last.
func (n *sharedNode) release() error {
	nodes.Lock()
	n.refs--
	last := n.refs == 0
	if last {
		delete(nodes.m, n.cfg)
	}
	nodes.Unlock()
	if !last {
		return nil
	}
	return n.close()
}

// status returns the node's status and client, or the failure of phase that
// says why it has none.
func status(ctx context.Context, n node, phase string) (*ipnstate.Status, *local.Client, *sdk.Failure) {
	lc, err := n.client(ctx)
	var st *ipnstate.Status
	if err == nil {
		st, err = lc.Status(ctx)
	}
	if err != nil {
		class := sdk.ContextClass(ctx, ClassTimeout)
		if class == "" {
			class = ClassUnavailable
		}
		return nil, nil, &sdk.Failure{Phase: phase, Class: class, Message: fmt.Sprintf("tailnet status: %v", err)}
	}
	if st.BackendState != ipn.Running.String() {
		return nil, nil, &sdk.Failure{Phase: phase, Class: ClassUnavailable,
			Message: fmt.Sprintf("the tailnet node is %s, not Running", st.BackendState)}
	}
	return st, lc, nil
}

// localNode is the local tailscaled, reached through its LocalAPI socket.
type localNode struct {
	lc *local.Client
}

func (n *localNode) client(context.Context) (*local.Client, error) { return n.lc, nil }

func (n *localNode) dialUser(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return n.lc.DialTCP(ctx, addr.Addr().String(), addr.Port())
}

func (n *localNode) close() error { return nil }

// tsnetNode is an embedded userspace node. It starts on first use and joins
// with the auth key read from the environment then.
type tsnetNode struct {
	cfg     nodeConfig
	running atomic.Bool // once Running, the client needs no more waiting

	mu  sync.Mutex
	srv *tsnet.Server
	err error // why the node cannot join, for every later call
}

func (n *tsnetNode) client(ctx context.Context) (*local.Client, error) {
	srv, err := n.server()
	if err != nil {
		return nil, err
	}
	lc, err := srv.LocalClient()
	if err != nil {
		return nil, err
	}
	if !n.running.Load() {
		if err := n.awaitRunning(ctx, lc); err != nil {
			return nil, err
		}
		n.running.Store(true)
	}
	return lc, nil
}

// server returns the node's tsnet server, started.
func (n *tsnetNode) server() (*tsnet.Server, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil || n.err != nil {
		return n.srv, n.err
	}
	dir := n.cfg.stateDir
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			n.err = fmt.Errorf("no state_dir and no user config directory: %w", err)
			return nil, n.err
		}
		dir = filepath.Join(base, "probe", "tailscale-"+n.cfg.hostname)
	}
	// A prober uploads no logs and opens no ports on the router.
	envknob.SetNoLogsNoSupport()
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	log := sdk.Logger().Named("tsnet")
	srv := &tsnet.Server{
		Dir:        dir,
		Hostname:   n.cfg.hostname,
		ControlURL: n.cfg.controlURL,
		AuthKey:    os.Getenv(n.cfg.authKeyEnv),
		Ephemeral:  n.cfg.ephemeral,
		Logf:       func(format string, args ...any) { log.Trace(fmt.Sprintf(format, args...)) },
		UserLogf:   func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	}
	if n.cfg.ephemeral {
		srv.Store = new(mem.Store)
	}
	if err := srv.Start(); err != nil {
		n.err = fmt.Errorf("start the tsnet node in %s: %w", dir, err)
		return nil, n.err
	}
	n.srv = srv
	return srv, nil
}

// awaitRunning waits until the node has joined the tailnet. A node that
// cannot join by itself (a refused or missing auth key) fails for good.
func (n *tsnetNode) awaitRunning(ctx context.Context, lc *local.Client) error {
	w, err := lc.WatchIPNBus(ctx, ipn.NotifyInitialState)
	if err != nil {
		return fmt.Errorf("watch the tsnet node: %w", err)
	}
	defer w.Close()
	for {
		note, err := w.Next()
		switch {
		case err != nil:
			return fmt.Errorf("join the tailnet: %w", err)
		case note.ErrMessage != nil:
			return n.fail(fmt.Errorf("join the tailnet: %s", *note.ErrMessage))
		case note.BrowseToURL != nil:
			return n.fail(fmt.Errorf("the node needs to log in: set %s to an auth key (or visit %s)", n.cfg.authKeyEnv, *note.BrowseToURL))
		case note.State == nil:
		case *note.State == ipn.Running:
			return nil
		case *note.State == ipn.NeedsMachineAuth:
			return errors.New("the node waits for an administrator to approve it")
		}
	}
}

func (n *tsnetNode) fail(err error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.err = err
	return err
}

func (n *tsnetNode) dialUser(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	srv, err := n.server()
	if err != nil {
		return nil, err
	}
	return srv.Dial(ctx, "tcp", addr.String())
}

func (n *tsnetNode) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return nil
	}
	return n.srv.Close()
}

var (
	_ node = (*localNode)(nil)
	_ node = (*tsnetNode)(nil)
)

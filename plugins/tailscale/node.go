package tailscale

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sync"

	"github.com/zclconf/go-cty/cty"
	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"

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
		for _, a := range []struct {
			name string
			set  bool
		}{
			{"control_url", c.controlURL != ""}, {"auth_key_env", c.authKeyEnv != ""},
			{"state_dir", c.stateDir != ""}, {"hostname", c.hostname != ""}, {"ephemeral", c.ephemeral},
		} {
			if a.set {
				return c, otherBackend(a.name, backendTSNet)
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
		if st, err = lc.Status(ctx); err != nil {
			err = fmt.Errorf("tailnet status: %w", err)
		}
	}
	if err != nil {
		class := sdk.ContextClass(ctx, ClassTimeout)
		if class == "" {
			class = ClassUnavailable
		}
		return nil, nil, &sdk.Failure{Phase: phase, Class: class, Message: err.Error()}
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

var _ node = (*localNode)(nil)

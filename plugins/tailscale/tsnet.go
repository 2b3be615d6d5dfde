package tailscale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/ipn"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"

	"github.com/probe-dev/probe/core/sdk"
)

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
		UserLogf:   func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) },
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

var _ node = (*tsnetNode)(nil)

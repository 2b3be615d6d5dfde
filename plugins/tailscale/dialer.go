package tailscale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Dialer connects to a peer through the tailnet node it speaks through. When
// the host kernel routes the tailnet (tailscaled on a TUN device), the dial
// is a plain TCP connect, dial-tcp's (sdk.DialTCP). Otherwise (tailscaled in
// userspace networking, or the tsnet backend) the node's userspace network
// stack connects, through the LocalAPI or tsnet, and the connection is
// bridged to a kernel socket so that it can travel to probe: the phase is
// then marked proxied. An address that is no node is never dialed: a
// tailnet dial to it would fall through to the host's own network.
type Dialer struct {
	node      *sharedNode
	closeOnce sync.Once
}

// NewDialer returns a Dialer configured by cfg, a value of the plugin's
// dialer schema. It does not touch the network.
func NewDialer(cfg cty.Value) (*Dialer, error) {
	nc, err := parseNodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Dialer{node: acquire(nc)}, nil
}

// Dial connects to req.Address after checking that it is a node's. The
// phase "connect" covers the connect alone; a failed check is a failed
// connect phase covering the check.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	check := sdk.StartSpan(sdk.PhaseConnect, callAt)
	st, _, f := status(ctx, d.node, sdk.PhaseConnect)
	var m *match
	if f == nil {
		if m = byAddr(st, req.Address.Addr().Unmap()); m == nil {
			f = &sdk.Failure{Phase: sdk.PhaseConnect, Class: ClassNotAPeer,
				Message: fmt.Sprintf("%s is not the address of a node of tailnet %s; it is not dialed", req.Address.Addr(), tailnetName(st))}
		}
	}
	if f != nil {
		return &sdk.DialResponse{Phases: []sdk.Phase{check.End(false, nil)}, Failure: f}, nil
	}

	if st.TUN {
		resp := sdk.DialTCP(ctx, callAt, req.Address, nil)
		for i := range resp.Phases {
			resp.Phases[i].Attrs["peer"] = m.node.HostName
		}
		return resp, nil
	}

	span := sdk.StartSpan(sdk.PhaseConnect, callAt)
	conn, err := d.node.dialUser(ctx, req.Address)
	attrs := map[string]any{"peer": m.node.HostName, "remote": req.Address.String(), "proxied": true}
	if err != nil {
		return &sdk.DialResponse{
			Phases:  []sdk.Phase{span.End(false, attrs)},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: classify(ctx, err), Message: fmt.Sprintf("dial %s through the tailnet: %v", req.Address, err)},
		}, nil
	}
	phase := span.End(true, attrs)
	if local, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		attrs["local"] = local.String()
	}
	kernel, err := bridge(conn)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("bridge the connection to %s: %w", req.Address, err)
	}
	return &sdk.DialResponse{Conn: kernel, Phases: []sdk.Phase{phase}}, nil
}

// Close releases the dialer's node; the last component to release an
// embedded node stops it.
func (d *Dialer) Close() error {
	var err error
	d.closeOnce.Do(func() { err = d.node.release() })
	return err
}

// classify returns the failure class of a userspace dial error. Userspace
// stacks report errors as text (gVisor's "connection was refused", or an
// HTTP error from the LocalAPI), so the text is read after the errno.
func classify(ctx context.Context, err error) sdk.Class {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return sdk.ClassTCPRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return sdk.ClassTCPUnreachable
	case errors.Is(err, syscall.ECONNRESET):
		return sdk.ClassTCPReset
	}
	if c := sdk.ContextClass(ctx, sdk.ClassTCPTimeout); c != "" {
		return c
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "refused"):
		return sdk.ClassTCPRefused
	case strings.Contains(msg, "unreachable"), strings.Contains(msg, "no route"):
		return sdk.ClassTCPUnreachable
	case strings.Contains(msg, "reset"):
		return sdk.ClassTCPReset
	case strings.Contains(msg, "timed out"), strings.Contains(msg, "timeout"):
		return sdk.ClassTCPTimeout
	}
	return sdk.ClassTCPError
}

var (
	_ sdk.Dialer = (*Dialer)(nil)
	_ sdk.Closer = (*Dialer)(nil)
)

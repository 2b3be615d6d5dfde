package dialtcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Dialer connects over TCP and measures the connect phase.
type Dialer struct {
	source  *net.TCPAddr  // local address to bind, nil for the kernel's choice
	timeout time.Duration // cap on the connect, 0 for none
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{}
	if s := sdk.String(cfg, "source"); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, sdk.AttrErrorf("source", "Invalid source address",
				"source must be an IP address such as \"192.0.2.10\" or \"2001:db8::10\", got %q.", s)
		}
		d.source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	var err error
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return d, nil
}

// Dial connects to req.Address. The phase "connect" covers the connect
// alone; a refused, unreachable or timed-out connect is reported as a
// Failure with a nil error.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	var nd net.Dialer
	if d.source != nil { // a typed nil in LocalAddr would print as "<nil>->" in errors
		nd.LocalAddr = d.source
	}
	span := sdk.StartSpan(sdk.PhaseConnect, callAt)
	conn, err := nd.DialContext(ctx, "tcp", req.Address.String())
	if err != nil {
		phase := span.End(false, nil)
		return &sdk.DialResponse{
			Phases:  []sdk.Phase{phase},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: classify(ctx, err), Message: err.Error()},
		}, nil
	}
	attrs := map[string]any{}
	phase := span.End(true, attrs)
	attrs["local"] = conn.LocalAddr().String()
	attrs["remote"] = conn.RemoteAddr().String()
	addKernelRTT(conn.(*net.TCPConn), attrs)
	return &sdk.DialResponse{Conn: conn, Phases: []sdk.Phase{phase}}, nil
}

// classify returns the failure class of a connect error. The socket's own
// verdict comes first, so that a refusal racing the deadline stays a refusal.
func classify(ctx context.Context, err error) sdk.Class {
	var ne net.Error
	switch {
	case sdk.FDLimit(err): // probe's own limit, not the target's doing
		return sdk.ClassFDLimit
	case errors.Is(err, syscall.ECONNREFUSED):
		return sdk.ClassTCPRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN):
		return sdk.ClassTCPUnreachable
	case errors.Is(err, syscall.ECONNRESET):
		return sdk.ClassTCPReset
	case errors.Is(err, syscall.ETIMEDOUT):
		return sdk.ClassTCPTimeout
	}
	if c := sdk.ContextClass(ctx, sdk.ClassTCPTimeout); c != "" {
		return c
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return sdk.ClassTCPTimeout
	}
	return sdk.ClassTCPError
}

var _ sdk.Dialer = (*Dialer)(nil)

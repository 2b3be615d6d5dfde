package dialudp

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

// Dialer creates connected UDP sockets.
type Dialer struct {
	source *net.UDPAddr // local address to bind, nil for the kernel's choice
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
		d.source = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return d, nil
}

// Dial creates a UDP socket connected to req.Address. The phase "connect"
// covers socket(2), bind(2) and connect(2), which send no packet: the
// kernel only chooses the route and the local address. A socket that
// cannot be made or connected is a Failure with a nil error.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	nd := net.Dialer{}
	if d.source != nil {
		nd.LocalAddr = d.source
	}
	span := sdk.StartSpan(sdk.PhaseConnect, callAt)
	conn, err := nd.DialContext(ctx, "udp", req.Address.String())
	if err != nil {
		phase := span.End(false, nil)
		return &sdk.DialResponse{Phases: []sdk.Phase{phase},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: classify(ctx, err), Message: err.Error()}}, nil
	}
	attrs := map[string]any{}
	phase := span.End(true, attrs)
	attrs["local"] = conn.LocalAddr().String()
	attrs["remote"] = conn.RemoteAddr().String()
	return &sdk.DialResponse{Conn: conn, Phases: []sdk.Phase{phase}}, nil
}

// classify returns the failure class of a socket or connect error.
func classify(ctx context.Context, err error) sdk.Class {
	switch {
	case sdk.FDLimit(err):
		return sdk.ClassFDLimit
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN):
		return ClassUnreachable
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	return ClassError
}

var _ sdk.Dialer = (*Dialer)(nil)

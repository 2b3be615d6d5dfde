package dialtcp

import (
	"context"
	"net"
	"net/netip"
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
	return sdk.DialTCP(ctx, callAt, req.Address, d.source), nil
}

var _ sdk.Dialer = (*Dialer)(nil)

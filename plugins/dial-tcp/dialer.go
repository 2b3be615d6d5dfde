package dialtcp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/probe-dev/probe/core/sdk"
)

// Dialer connects over TCP and measures the connect phase.
type Dialer struct {
	source  netip.Addr    // local address to bind; invalid for the kernel's choice
	portLo  uint16        // source_port range, 0 for the kernel's choice
	portHi  uint16        // inclusive
	fwmark  uint32        // SO_MARK, 0 for none
	timeout time.Duration // cap on the connect, 0 for none
	clock   string        // of the connect phase's duration: sdk.ClockProcess or sdk.ClockKernel
	start   func() uint32 // where in the source_port range to start, modulo its size: random
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{start: rand.Uint32}
	if s := sdk.String(cfg, "source"); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, sdk.AttrErrorf("source", "Invalid source address",
				"source must be an IP address such as \"192.0.2.10\" or \"2001:db8::10\", got %q.", s)
		}
		d.source = ip.Unmap()
	}
	if s := sdk.String(cfg, "source_port"); s != "" {
		var err error
		if d.portLo, d.portHi, err = parsePorts(s); err != nil {
			return nil, sdk.AttrErrorf("source_port", "Invalid source port",
				"source_port must be a port or a range of ports such as \"40000\" or \"40000-40099\", from 1 to 65535, got %q.", s)
		}
	}
	mark, err := sdk.Int(cfg, "fwmark")
	if err != nil {
		return nil, err
	}
	if mark < 0 || mark > 1<<32-1 {
		return nil, sdk.AttrErrorf("fwmark", "Invalid fwmark", "fwmark must be from 0 (none) to 4294967295, got %d.", mark)
	}
	d.fwmark = uint32(mark)
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	switch d.clock = sdk.String(cfg, "clock"); d.clock {
	case "":
		d.clock = sdk.ClockProcess
	case sdk.ClockProcess, sdk.ClockKernel:
	default:
		return nil, sdk.AttrErrorf("clock", "Invalid clock", "clock must be %q or %q, got %q.", sdk.ClockProcess, sdk.ClockKernel, d.clock)
	}
	return d, nil
}

// parsePorts reads "N" or "N-M" with 1 <= N <= M <= 65535.
func parsePorts(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	l, err := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	if err != nil {
		return 0, 0, err
	}
	h, err := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if l == 0 || h < l {
		return 0, 0, fmt.Errorf("bad range %d-%d", l, h)
	}
	return uint16(l), uint16(h), nil
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
	if d.portLo == 0 && d.source.IsValid() {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.source, 0))
	}
	if d.portLo != 0 || d.fwmark != 0 {
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = d.control(int(fd), req.Address.Addr()) }); cerr != nil {
				return cerr
			}
			return err
		}
	}
	return sdk.DialTCPClock(ctx, callAt, req.Address, &nd, d.clock), nil
}

// control sets SO_MARK on the socket fd and binds it to a port of the
// source_port range, trying each in turn from a random one: a port in use
// (by a listener, a connection, or one in TIME_WAIT) is skipped.
func (d *Dialer) control(fd int, remote netip.Addr) error {
	if d.fwmark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(d.fwmark)); err != nil {
			return fmt.Errorf("set fwmark %d (SO_MARK needs CAP_NET_ADMIN): %w", d.fwmark, err)
		}
	}
	if d.portLo == 0 {
		return nil
	}
	src := d.source
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
		if remote.Is6() && !remote.Is4In6() {
			src = netip.IPv6Unspecified()
		}
	}
	n := uint32(d.portHi-d.portLo) + 1
	first := d.start() % n
	for i := range n {
		port := d.portLo + uint16((first+i)%n)
		var sa unix.Sockaddr
		if src.Is4() {
			sa = &unix.SockaddrInet4{Port: int(port), Addr: src.As4()}
		} else {
			sa = &unix.SockaddrInet6{Port: int(port), Addr: src.As16()}
		}
		err := unix.Bind(fd, sa)
		if err == nil {
			return nil
		}
		if err != unix.EADDRINUSE {
			return fmt.Errorf("bind %s: %w", netip.AddrPortFrom(src, port), err)
		}
	}
	return fmt.Errorf("source_port %d-%d: every port in use: %w", d.portLo, d.portHi, unix.EADDRINUSE)
}

var _ sdk.Dialer = (*Dialer)(nil)

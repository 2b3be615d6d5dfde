package dialsocks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/net/proxy"

	"github.com/probe-dev/probe/core/sdk"
)

// Dialer connects through a SOCKS5 proxy.
type Dialer struct {
	proxy   netip.AddrPort
	socks   withConn
	remote  bool          // send the host name, not the address
	timeout time.Duration // cap on both phases, 0 for none
}

// withConn is the SOCKS5 client of golang.org/x/net/proxy: it runs the
// SOCKS5 exchange over a connection to the proxy that the caller made.
type withConn interface {
	DialWithConn(ctx context.Context, c net.Conn, network, address string) (net.Addr, error)
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{}
	var err error
	if d.proxy, err = parseProxy(sdk.String(cfg, "proxy")); err != nil {
		return nil, err
	}
	var auth *proxy.Auth
	user, pass := sdk.String(cfg, "username"), sdk.String(cfg, "password")
	switch {
	case user == "" && pass != "":
		return nil, sdk.AttrErrorf("password", "Password without username", "password is set but username is not.")
	case len(user) > 255 || len(pass) > 255: // RFC 1929 §2: one byte of length each
		return nil, sdk.AttrErrorf("username", "Credentials too long", "username and password must be at most 255 bytes each.")
	case user != "":
		auth = &proxy.Auth{User: user, Password: pass}
	}
	pd, err := proxy.SOCKS5("tcp", d.proxy.String(), auth, nil)
	if err != nil {
		return nil, fmt.Errorf("socks5 client for %s: %w", d.proxy, err)
	}
	var ok bool
	if d.socks, ok = pd.(withConn); !ok {
		return nil, fmt.Errorf("socks5 client %T cannot run over a given connection", pd)
	}
	switch r := sdk.String(cfg, "resolve"); r {
	case "local":
	case "remote":
		d.remote = true
	default:
		return nil, sdk.AttrErrorf("resolve", "Invalid resolve", `resolve must be "local" or "remote", got %q.`, r)
	}
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return d, nil
}

// parseProxy reads the proxy's address: an IP literal with an optional
// port, 1080 by default.
func parseProxy(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			ap = netip.AddrPortFrom(a, 1080)
		}
	}
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, sdk.AttrErrorf("proxy", "Invalid proxy address",
			`proxy must be an IP address with an optional port, such as "127.0.0.1:1080" or "[::1]:1080", got %q.`, s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Dial connects to the proxy (phase "connect", as dial-tcp measures it) and
// asks it to connect to the target (phase "proxy"). The returned connection
// is the socket to the proxy, now a tunnel to the target.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return sdk.DialProxy(ctx, req, sdk.ProxyDial{Proxy: d.proxy, Timeout: d.timeout, Remote: d.remote, Verb: "socks5", Tunnel: d.tunnel}), nil
}

// tunnel asks the SOCKS5 proxy over conn to connect to target.
func (d *Dialer) tunnel(ctx context.Context, conn net.Conn, target string, _ map[string]any) (net.Conn, sdk.Class, error) {
	if _, err := d.socks.DialWithConn(ctx, conn, "tcp", target); err != nil {
		return conn, classify(ctx, err), err
	}
	return conn, "", nil
}

// classify returns the failure class of a SOCKS5 exchange's error. The
// client of golang.org/x/net/proxy reports the proxy's reply code and the
// authentication's outcome in its error text, which is all it exposes.
func classify(ctx context.Context, err error) sdk.Class {
	msg := err.Error()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	var ne net.Error
	switch {
	case has("authentication"): // "no acceptable authentication methods", "username/password authentication failed"
		return ClassAuth
	case has("connection not allowed by ruleset"):
		return ClassRefused
	case has("network unreachable", "host unreachable", "connection refused", "TTL expired"):
		return ClassTargetUnreachable
	case has("unknown error"): // another reply code: general failure, command or address type not supported
		return ClassError
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), has("unexpected protocol version", "address type", "reserved field"):
		return ClassProtocol
	}
	return ClassError
}

var _ sdk.Dialer = (*Dialer)(nil)

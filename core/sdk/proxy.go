package sdk

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// ProxyDial is what a proxy dialer's Dial needs to know: where the proxy
// is, how it asks for the tunnel, and the settings every proxy dialer has.
type ProxyDial struct {
	// Proxy is the proxy's address; Timeout, when positive, bounds both
	// phases.
	Proxy   netip.AddrPort
	Timeout time.Duration
	// Remote asks the proxy for the target by its host name, which the
	// proxy resolves, rather than by the address resolved here.
	Remote bool
	// Verb names the request in a failure's message ("CONNECT", "socks5").
	Verb string
	// Tunnel asks the proxy, over conn, for a tunnel to target, adding what
	// it learns to attrs. It returns the connection to use (conn, or one
	// over it; closed on error) and, on error, its failure class.
	Tunnel func(ctx context.Context, conn net.Conn, target string, attrs map[string]any) (net.Conn, Class, error)
}

// DialProxy is a proxy dialer's Dial: phase "connect" to the proxy, as
// DialTCP measures it, with the proxy's address in attr "proxy", then phase
// "proxy", the tunnel to req's target (attr "target"). The response's
// connection is the tunnel.
func DialProxy(ctx context.Context, req *DialRequest, p ProxyDial) *DialResponse {
	callAt := time.Now()
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	resp := DialTCP(ctx, callAt, p.Proxy, nil)
	resp.Phases[0].Attrs["proxy"] = p.Proxy.String()
	if resp.Failure != nil {
		return resp
	}
	target := req.Address.String()
	if p.Remote {
		target = net.JoinHostPort(req.Host, strconv.Itoa(int(req.Address.Port())))
	}
	attrs := map[string]any{"target": target}
	span := StartSpan(PhaseProxy, callAt)
	conn, class, err := p.Tunnel(ctx, resp.Conn, target, attrs)
	if err != nil {
		_ = conn.Close()
		resp.Conn = nil
		resp.Phases = append(resp.Phases, span.End(false, attrs))
		resp.Failure = &Failure{Phase: PhaseProxy, Class: class, Message: fmt.Sprintf("%s %s via %s: %v", p.Verb, target, p.Proxy, err)}
		return resp
	}
	resp.Conn = conn
	resp.Phases = append(resp.Phases, span.End(true, attrs))
	return resp
}

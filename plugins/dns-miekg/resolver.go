package dnsmiekg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Resolver resolves names by querying its servers in order. It is safe for
// concurrent use.
type Resolver struct {
	servers   []string // "addr:port", in the order they are tried
	transport string   // "udp" or "tcp"
	client    *dns.Client
}

// New returns a Resolver configured by cfg, a value of the plugin's resolver
// schema. A bad attribute is reported as an *sdk.AttrError.
func New(cfg cty.Value) (*Resolver, error) {
	servers, err := parseServers(sdk.Strings(cfg, "servers"))
	if err != nil {
		return nil, err
	}
	transport := sdk.String(cfg, "transport")
	if transport != "udp" && transport != "tcp" {
		return nil, sdk.AttrErrorf("transport", "Invalid transport", `transport must be "udp" or "tcp", got %q.`, transport)
	}
	timeout, err := sdk.Duration(cfg, "timeout")
	if err != nil {
		return nil, err
	}
	if timeout == 0 {
		return nil, sdk.AttrErrorf("timeout", "Invalid duration", "timeout must be greater than zero.")
	}
	return &Resolver{
		servers:   servers,
		transport: transport,
		client:    &dns.Client{Net: transport, Timeout: timeout},
	}, nil
}

// parseServers checks that each server is an IP literal with an optional
// port and returns them as "addr:port".
func parseServers(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, sdk.AttrErrorf("servers", "No servers", "servers must list at least one server.")
	}
	out := make([]string, len(list))
	for i, s := range list {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				ap = netip.AddrPortFrom(a, 53)
			}
		}
		if err != nil || ap.Port() == 0 {
			return nil, sdk.AttrErrorf("servers", "Invalid server",
				`servers[%d] must be an IP address with an optional port, such as "9.9.9.9:53" or "[2620:fe::fe]:53", got %q.`, i, s)
		}
		out[i] = ap.String()
	}
	return out, nil
}

// Resolve queries A records for req.Host and, when the answer holds none,
// AAAA records. An IP literal is answered at once without a query.
func (r *Resolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	callAt := time.Now()
	span := sdk.StartSpan(sdk.PhaseResolve, callAt)
	if addr, err := netip.ParseAddr(req.Host); err == nil {
		addr = addr.Unmap()
		return &sdk.ResolveResponse{
			Addresses: []netip.Addr{addr},
			Phases:    []sdk.Phase{span.End(true, map[string]any{"addresses": []string{addr.String()}, "literal": true})},
		}, nil
	}

	name := dns.Fqdn(req.Host)
	queries := 0
	ans, fail := r.query(ctx, name, dns.TypeA, 0, &queries)
	if fail == nil && len(ans.addrs) == 0 {
		ans, fail = r.query(ctx, name, dns.TypeAAAA, ans.server, &queries)
		if fail == nil && len(ans.addrs) == 0 {
			fail = &sdk.Failure{Class: sdk.ClassDNSNoAnswer,
				Message: fmt.Sprintf("query %s A, AAAA @%s: no address records", name, r.servers[ans.server])}
		}
	}

	attrs := map[string]any{"transport": r.transport, "queries": queries}
	if ans != nil {
		attrs["server"] = r.servers[ans.server]
		attrs["rcode"] = rcodeString(ans.rcode)
		attrs["rtt_ms"] = float64(ans.rtt) / float64(time.Millisecond)
	}
	if fail != nil {
		fail.Phase = sdk.PhaseResolve
		return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, attrs)}, Failure: fail}, nil
	}
	addrs := make([]string, len(ans.addrs))
	for i, a := range ans.addrs {
		addrs[i] = a.String()
	}
	attrs["addresses"] = addrs
	attrs["ttl"] = int(ans.ttl)
	return &sdk.ResolveResponse{Addresses: ans.addrs, Phases: []sdk.Phase{span.End(true, attrs)}}, nil
}

// answer is what a server replied to one query.
type answer struct {
	server int // index in Resolver.servers
	rtt    time.Duration
	rcode  int
	addrs  []netip.Addr
	ttl    uint32 // least TTL of the address records
}

// query asks the servers from index first on for name's records of type
// qtype, moving on to the next server when one times out or cannot be
// reached. A reply ends the search: its answer is returned, with a failure
// when its rcode is not NOERROR or it cannot be used. sent counts the
// queries sent.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16, first int, sent *int) (*answer, *sdk.Failure) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	var (
		errs  []string
		class sdk.Class
	)
	for i := first; i < len(r.servers); i++ {
		what := fmt.Sprintf("query %s %s @%s", name, dns.TypeToString[qtype], r.servers[i])
		if c, err := ctxDone(ctx); c != "" {
			return nil, &sdk.Failure{Class: c, Message: fmt.Sprintf("%s: %v", what, err)}
		}
		*sent++
		in, rtt, err := r.exchange(ctx, m, r.servers[i])
		if err != nil {
			if c, _ := ctxDone(ctx); c != "" {
				return nil, &sdk.Failure{Class: c, Message: fmt.Sprintf("%s: %v", what, err)}
			}
			// A reply that arrived but did not unpack ends the search.
			if in != nil || errors.Is(err, dns.ErrShortRead) {
				return nil, &sdk.Failure{Class: sdk.ClassDNSMalformed, Message: fmt.Sprintf("%s: malformed reply: %v", what, err)}
			}
			errs = append(errs, fmt.Sprintf("%s: %v", what, err))
			class = sdk.ClassDNSError
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				class = sdk.ClassDNSTimeout
			}
			continue
		}

		ans := &answer{server: i, rtt: rtt, rcode: in.Rcode}
		if in.Truncated && r.transport == "udp" {
			return ans, &sdk.Failure{Class: sdk.ClassDNSTruncated, Message: what + ": truncated reply (TC set)"}
		}
		if in.Rcode != dns.RcodeSuccess {
			return ans, &sdk.Failure{Class: rcodeClass(in.Rcode), Message: what + ": " + rcodeString(in.Rcode)}
		}
		for _, rr := range in.Answer {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			default:
				continue
			}
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			if ttl := rr.Header().Ttl; len(ans.addrs) == 0 || ttl < ans.ttl {
				ans.ttl = ttl
			}
			ans.addrs = append(ans.addrs, a.Unmap())
		}
		return ans, nil
	}
	return nil, &sdk.Failure{Class: class, Message: strings.Join(errs, "; ")}
}

// ctxDone returns the failure class and error of a finished ctx, and "" for
// a live one. ctx counts as expired once its deadline has passed, even before
// ctx itself notices: a socket deadline taken from ctx fires at that instant.
func ctxDone(ctx context.Context) (sdk.Class, error) {
	if err := ctx.Err(); err != nil {
		return sdk.ContextClass(ctx, sdk.ClassDNSTimeout), err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return sdk.ClassDNSTimeout, context.DeadlineExceeded
	}
	return "", nil
}

// rcodeClass returns the failure class of an answer with a failing rcode.
func rcodeClass(rcode int) sdk.Class {
	switch rcode {
	case dns.RcodeNameError:
		return sdk.ClassDNSNXDomain
	case dns.RcodeServerFailure:
		return sdk.ClassDNSServFail
	case dns.RcodeRefused:
		return sdk.ClassDNSRefused
	default:
		return sdk.ClassDNSError
	}
}

// rcodeString names rcode ("NXDOMAIN"), or gives its number when it has no
// name.
func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

var _ sdk.Resolver = (*Resolver)(nil)

// exchange sends m to server and reads the reply; canceling ctx ends it at
// once (miekg/dns honours only the deadline).
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, time.Duration, error) {
	conn, err := r.client.DialContext(ctx, server)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	return r.client.ExchangeWithConnContext(ctx, m, conn)
}

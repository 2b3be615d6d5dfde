package dnssystem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Resolver resolves names with the operating system's resolver. It is safe
// for concurrent use.
type Resolver struct {
	network  string        // "ip", "ip4" or "ip6"
	preferGo bool          // Go's resolver rather than getaddrinfo(3)
	timeout  time.Duration // 0: only the caller's deadline applies

	// dial, when set, is the dialer Go's resolver uses to reach DNS servers.
	// Tests point it at a lab server so that no query leaves the machine.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// New returns a Resolver configured by cfg, a value of the plugin's resolver
// schema; the first time it is called in a process it warms the process up
// for lookups (warm). A bad attribute is reported as an *sdk.AttrError.
func New(cfg cty.Value) (*Resolver, error) {
	network := sdk.String(cfg, "network")
	switch network {
	case "ip", "ip4", "ip6":
	default:
		return nil, sdk.AttrErrorf("network", "Invalid network", `network must be "ip", "ip4" or "ip6", got %q.`, network)
	}
	timeout, err := sdk.Duration(cfg, "timeout")
	if err != nil {
		return nil, err
	}
	warmOnce.Do(warmUp)
	return &Resolver{network: network, preferGo: sdk.Bool(cfg, "prefer_go"), timeout: timeout}, nil
}

// Resolve looks req.Host up. An IP literal is answered at once.
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

	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	name, lookup := "go", r.lookupGo
	if !r.preferGo {
		name, lookup = platformResolver, r.lookupPlatform
	}
	addrs, err := lookup(ctx, req.Host)
	attrs := map[string]any{"resolver": name, "network": r.network}
	if err != nil {
		return &sdk.ResolveResponse{
			Phases:  []sdk.Phase{span.End(false, attrs)},
			Failure: &sdk.Failure{Phase: sdk.PhaseResolve, Class: failureClass(ctx, err), Message: err.Error()},
		}, nil
	}
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		addrs[i] = a.Unmap()
		strs[i] = addrs[i].String()
	}
	attrs["addresses"] = strs
	return &sdk.ResolveResponse{Addresses: addrs, Phases: []sdk.Phase{span.End(true, attrs)}}, nil
}

// lookupGo looks host up with Go's own resolver, which reads /etc/hosts and
// /etc/resolv.conf and sends the queries itself.
func (r *Resolver) lookupGo(ctx context.Context, host string) ([]netip.Addr, error) {
	dial := r.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext // what Go's resolver uses when Dial is nil
	}
	// Go's resolver reports a socket it could not open as text only; the
	// dial records it, so that a lookup starved of descriptors is
	// local.fd_limit, not a failure of the name.
	var (
		mu      sync.Mutex
		starved error
	)
	// A fresh net.Resolver per lookup: a shared one merges concurrent lookups
	// of the same name into one, and each probe must measure its own.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if sdk.FDLimit(err) {
			mu.Lock()
			starved = err
			mu.Unlock()
		}
		return c, err
	}}
	addrs, err := res.LookupNetIP(ctx, r.network, host)
	mu.Lock()
	defer mu.Unlock()
	if err != nil && starved != nil {
		return nil, fmt.Errorf("%w (%w)", err, starved)
	}
	return addrs, err
}

// failureClass classifies an error of a lookup run under ctx.
func failureClass(ctx context.Context, err error) sdk.Class {
	if c := sdk.ContextClass(ctx, sdk.ClassDNSTimeout); c != "" {
		return c
	}
	de, ok := errors.AsType[*net.DNSError](err)
	switch {
	case sdk.FDLimit(err): // probe's own limit, not the name's fault
		return sdk.ClassFDLimit
	case !ok:
		return sdk.ClassDNSError
	case de.IsNotFound:
		return sdk.ClassDNSNXDomain
	case de.IsTimeout:
		return sdk.ClassDNSTimeout
	case strings.Contains(de.Err, "server misbehaving"):
		return sdk.ClassDNSServFail
	default:
		return sdk.ClassDNSError
	}
}

var _ sdk.Resolver = (*Resolver)(nil)

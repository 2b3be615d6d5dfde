package tailscale

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"
	"tailscale.com/client/local"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"

	"github.com/probe-dev/probe/core/sdk"
)

// Resolver answers a target's host from the peer list of the tailnet node it
// speaks through: a MagicDNS name (short, fully qualified, with or without
// the trailing dot) or a DNS record of the tailnet stands for a node's
// addresses, and an address literal must be a node's own. It never queries
// a DNS server, so no name escapes the tailnet.
type Resolver struct {
	node      *sharedNode
	ping      bool
	closeOnce sync.Once
}

// NewResolver returns a Resolver configured by cfg, a value of the plugin's
// resolver schema. It does not touch the network: the node is reached, or
// joins the tailnet, on the first Resolve.
func NewResolver(cfg cty.Value) (*Resolver, error) {
	nc, err := parseNodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Resolver{node: acquire(nc), ping: sdk.Bool(cfg, "ping")}, nil
}

// Resolve answers req.Host. The phase "resolve" covers the status query (and,
// the first time, an embedded node's joining the tailnet); with ping set, the
// phase "ping" follows it. A host that is no node fails as
// tailscale.not_a_peer (an address, or a name whose record points outside the
// tailnet) or dns.nxdomain (a name no node has); a node that is not
// connected to the control plane fails as tailscale.offline.
func (r *Resolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	callAt := time.Now()
	span := sdk.StartSpan(sdk.PhaseResolve, callAt)
	st, lc, f := status(ctx, r.node, sdk.PhaseResolve)
	if f != nil {
		return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, nil)}, Failure: f}, nil
	}
	m, f := find(st, req.Host)
	var attrs map[string]any
	if m != nil {
		attrs = m.attrs()
		if f == nil && !m.node.Online {
			f = &sdk.Failure{Phase: sdk.PhaseResolve, Class: ClassOffline,
				Message: fmt.Sprintf("%s (%s) is offline: not connected to the control plane", m.name(), m.addrs[0])}
		}
	}
	if f != nil {
		return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, attrs)}, Failure: f}, nil
	}
	phases := []sdk.Phase{span.End(true, attrs)}
	if r.ping {
		p, f := ping(ctx, lc, callAt, m.addrs[0])
		phases = append(phases, p)
		if f != nil {
			return &sdk.ResolveResponse{Phases: phases, Failure: f}, nil
		}
	}
	return &sdk.ResolveResponse{Addresses: m.addrs, Phases: phases}, nil
}

// Close releases the resolver's node; the last component to release an
// embedded node stops it.
func (r *Resolver) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.node.release() })
	return err
}

// match is what a host stands for on the tailnet.
type match struct {
	node  *ipnstate.PeerStatus
	self  bool         // the node probe speaks through
	addrs []netip.Addr // to dial, in the node's order (IPv4 first)
}

// name returns the node's MagicDNS name without the trailing dot, or its
// host name when it has none.
func (m *match) name() string {
	if n := strings.TrimSuffix(m.node.DNSName, "."); n != "" {
		return n
	}
	return m.node.HostName
}

// attrs are the facts the resolve phase reports about the node.
func (m *match) attrs() map[string]any {
	p := m.node
	addrs := make([]string, len(m.addrs))
	for i, a := range m.addrs {
		addrs[i] = a.String()
	}
	attrs := map[string]any{
		"addresses": addrs,
		"peer":      p.HostName,
		"dns_name":  strings.TrimSuffix(p.DNSName, "."),
		"os":        p.OS,
		"online":    p.Online,
	}
	switch {
	case m.self:
		attrs["path"] = "self"
	case p.CurAddr != "":
		attrs["path"], attrs["endpoint"] = "direct", p.CurAddr
	case p.PeerRelay != "":
		attrs["path"], attrs["endpoint"] = "peer_relay", p.PeerRelay
	case p.Relay != "":
		attrs["path"], attrs["derp_region"] = "derp", p.Relay
	}
	return attrs
}

// find returns the node host stands for on the tailnet of st: the node that
// has the address host, or that the name host (a MagicDNS name, or a DNS
// record of the tailnet pointing at a node's address) names. It fails when
// there is none.
func find(st *ipnstate.Status, host string) (*match, *sdk.Failure) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		if m := byAddr(st, ip); m != nil {
			return m, nil
		}
		return nil, &sdk.Failure{Phase: sdk.PhaseResolve, Class: ClassNotAPeer,
			Message: fmt.Sprintf("%s is not the address of a node of tailnet %s; it is not dialed", ip, tailnetName(st))}
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix := magicDNSSuffix(st); !strings.Contains(name, ".") && suffix != "" {
		name += "." + suffix
	}
	for _, p := range nodesOf(st) {
		if strings.EqualFold(strings.TrimSuffix(p.DNSName, "."), name) {
			return &match{node: p, self: p == st.Self, addrs: slices.Clone(p.TailscaleIPs)}, nil
		}
	}
	var recorded []netip.Addr
	for _, rec := range st.ExtraRecords {
		ip, err := netip.ParseAddr(rec.Value)
		if err == nil && (rec.Type == "" || rec.Type == "A" || rec.Type == "AAAA") &&
			strings.EqualFold(strings.TrimSuffix(rec.Name, "."), name) {
			recorded = append(recorded, ip)
		}
	}
	if len(recorded) == 0 {
		return nil, &sdk.Failure{Phase: sdk.PhaseResolve, Class: sdk.ClassDNSNXDomain,
			Message: fmt.Sprintf("no node of tailnet %s is named %q, and no DNS record of the tailnet has that name", tailnetName(st), name)}
	}
	for _, ip := range recorded {
		if m := byAddr(st, ip); m != nil {
			return m, nil
		}
	}
	return nil, &sdk.Failure{Phase: sdk.PhaseResolve, Class: ClassNotAPeer,
		Message: fmt.Sprintf("the tailnet's DNS record %s points at %s, which is not the address of a node; it is not dialed", name, recorded[0])}
}

// byAddr returns the node of st whose address ip is, nil when none is.
func byAddr(st *ipnstate.Status, ip netip.Addr) *match {
	for _, p := range nodesOf(st) {
		if slices.Contains(p.TailscaleIPs, ip) {
			return &match{node: p, self: p == st.Self, addrs: []netip.Addr{ip}}
		}
	}
	return nil
}

// nodesOf lists the nodes of st: the peers and the node itself.
func nodesOf(st *ipnstate.Status) []*ipnstate.PeerStatus {
	out := make([]*ipnstate.PeerStatus, 0, len(st.Peer)+1)
	for _, p := range st.Peer {
		out = append(out, p)
	}
	if st.Self != nil {
		out = append(out, st.Self)
	}
	return out
}

// magicDNSSuffix returns the MagicDNS suffix of the tailnet of st, "" when
// it has none.
func magicDNSSuffix(st *ipnstate.Status) string {
	if st.CurrentTailnet == nil {
		return ""
	}
	return st.CurrentTailnet.MagicDNSSuffix
}

// tailnetName names the tailnet of st for messages.
func tailnetName(st *ipnstate.Status) string {
	if st.CurrentTailnet != nil && st.CurrentTailnet.Name != "" {
		return st.CurrentTailnet.Name
	}
	return magicDNSSuffix(st)
}

// ping sends a disco ping to ip and measures it as the phase "ping": the
// latency tailscaled measured and the path the pong came back on.
func ping(ctx context.Context, lc *local.Client, callAt time.Time, ip netip.Addr) (sdk.Phase, *sdk.Failure) {
	span := sdk.StartSpan(PhasePing, callAt)
	res, err := lc.Ping(ctx, ip, tailcfg.PingDisco)
	if err == nil && res.Err != "" {
		err = fmt.Errorf("%s", res.Err)
	}
	if err != nil {
		class := sdk.ContextClass(ctx, ClassTimeout)
		if class == "" {
			class = ClassPingFailed
		}
		return span.End(false, nil), &sdk.Failure{Phase: PhasePing, Class: class, Message: fmt.Sprintf("disco ping %s: %v", ip, err)}
	}
	attrs := map[string]any{"latency_ms": res.LatencySeconds * 1000}
	switch {
	case res.IsLocalIP:
		attrs["path"] = "self"
	case res.Endpoint != "":
		attrs["path"], attrs["endpoint"] = "direct", res.Endpoint
	case res.PeerRelay != "":
		attrs["path"], attrs["endpoint"] = "peer_relay", res.PeerRelay
	case res.DERPRegionCode != "":
		attrs["path"], attrs["derp_region"] = "derp", res.DERPRegionCode
	}
	return span.End(true, attrs), nil
}

var (
	_ sdk.Resolver = (*Resolver)(nil)
	_ sdk.Closer   = (*Resolver)(nil)
)

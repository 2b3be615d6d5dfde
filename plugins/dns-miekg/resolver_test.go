package dnsmiekg

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
)

// startDNS starts a lab DNS server for probe.test. with the names the tests
// use, closed when the test ends.
func startDNS(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("probe.test.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	s.AddAddr("api", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"))
	s.AddAddr("v6", netip.MustParseAddr("::1"))
	s.AddAddr("slow", netip.MustParseAddr("127.0.0.1"))
	s.SetBehavior("slow", lab.DNSBehavior{Delay: 30 * time.Millisecond})
	s.SetBehavior("empty", lab.DNSBehavior{})
	s.SetBehavior("servfail", lab.DNSBehavior{Rcode: dns.RcodeServerFailure})
	s.SetBehavior("refused", lab.DNSBehavior{Rcode: dns.RcodeRefused})
	s.SetBehavior("silent", lab.DNSBehavior{Silent: true})
	s.SetBehavior("truncated", lab.DNSBehavior{Truncate: true})
	s.SetBehavior("malformed", lab.DNSBehavior{Malformed: true})
	return s
}

// startSilent starts a lab DNS server that never answers.
func startSilent(t *testing.T) string {
	t.Helper()
	s := startDNS(t)
	s.SetBehavior("*", lab.DNSBehavior{Silent: true})
	return s.Addr
}

// newResolver builds a Resolver through the plugin's schema, as the core does.
func newResolver(t *testing.T, values map[string]cty.Value) *Resolver {
	t.Helper()
	p := Plugin()
	cfg, err := p.ResolverSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Resolver)
}

func servers(addrs ...string) cty.Value {
	vals := make([]cty.Value, len(addrs))
	for i, a := range addrs {
		vals[i] = cty.StringVal(a)
	}
	return cty.ListVal(vals)
}

// resolve runs one resolution and checks the response's shape: one resolve
// phase that agrees with the failure, and addresses only on success.
func resolve(t *testing.T, ctx context.Context, r *Resolver, host string) (*sdk.ResolveResponse, sdk.Phase) {
	t.Helper()
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: host, Port: 443})
	if err != nil {
		t.Fatalf("Resolve(%q): %v", host, err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != sdk.PhaseResolve {
		t.Fatalf("Resolve(%q) phases = %+v, want one %q phase", host, resp.Phases, sdk.PhaseResolve)
	}
	ph := resp.Phases[0]
	if ph.OK != (resp.Failure == nil) {
		t.Errorf("phase OK = %v with failure %v", ph.OK, resp.Failure)
	}
	if resp.Failure != nil && (resp.Failure.Phase != sdk.PhaseResolve || len(resp.Addresses) > 0) {
		t.Errorf("failure %+v with addresses %v", resp.Failure, resp.Addresses)
	}
	if ph.Start < 0 || ph.Start > 5*time.Millisecond || ph.Duration <= 0 {
		t.Errorf("phase start %v, duration %v", ph.Start, ph.Duration)
	}
	return resp, ph
}

func TestResolve(t *testing.T) {
	s := startDNS(t)
	tests := []struct {
		host      string
		transport string
		want      []netip.Addr
		class     sdk.Class
		message   string // for a failure; %s stands for the server
		attrs     map[string]any
	}{
		{
			host: "api.probe.test",
			want: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
			attrs: map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "server": s.Addr,
				"rcode": "NOERROR", "ttl": 60, "transport": "udp", "queries": 1},
		},
		{
			host: "API.probe.test.", transport: "tcp",
			want: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
			attrs: map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "server": s.Addr,
				"rcode": "NOERROR", "ttl": 60, "transport": "tcp", "queries": 1},
		},
		{
			host: "v6.probe.test",
			want: []netip.Addr{netip.MustParseAddr("::1")},
			attrs: map[string]any{"addresses": []string{"::1"}, "server": s.Addr,
				"rcode": "NOERROR", "ttl": 60, "transport": "udp", "queries": 2},
		},
		{
			host: "nope.probe.test", class: sdk.ClassDNSNXDomain, message: "query nope.probe.test. A @%s: NXDOMAIN",
			attrs: map[string]any{"server": s.Addr, "rcode": "NXDOMAIN", "transport": "udp", "queries": 1},
		},
		{
			host: "servfail.probe.test", class: sdk.ClassDNSServFail, message: "query servfail.probe.test. A @%s: SERVFAIL",
			attrs: map[string]any{"server": s.Addr, "rcode": "SERVFAIL", "transport": "udp", "queries": 1},
		},
		{
			host: "refused.probe.test", class: sdk.ClassDNSRefused, message: "query refused.probe.test. A @%s: REFUSED",
			attrs: map[string]any{"server": s.Addr, "rcode": "REFUSED", "transport": "udp", "queries": 1},
		},
		{
			host: "empty.probe.test", class: sdk.ClassDNSNoAnswer, message: "query empty.probe.test. A, AAAA @%s: no address records",
			attrs: map[string]any{"server": s.Addr, "rcode": "NOERROR", "transport": "udp", "queries": 2},
		},
		{
			host: "truncated.probe.test", class: sdk.ClassDNSTruncated, message: "query truncated.probe.test. A @%s: truncated reply (TC set)",
			attrs: map[string]any{"server": s.Addr, "rcode": "NOERROR", "transport": "udp", "queries": 1},
		},
		{
			host: "malformed.probe.test", class: sdk.ClassDNSMalformed, message: "query malformed.probe.test. A @%s: malformed reply: ",
			attrs: map[string]any{"transport": "udp", "queries": 1},
		},
		{
			host: "malformed.probe.test", transport: "tcp", class: sdk.ClassDNSMalformed, message: "query malformed.probe.test. A @%s: malformed reply: ",
			attrs: map[string]any{"transport": "tcp", "queries": 1},
		},
	}
	for _, tt := range tests {
		transport := tt.transport
		if transport == "" {
			transport = "udp"
		}
		t.Run(tt.host+"/"+transport, func(t *testing.T) {
			r := newResolver(t, map[string]cty.Value{"servers": servers(s.Addr), "transport": cty.StringVal(transport)})
			resp, ph := resolve(t, t.Context(), r, tt.host)
			if diff := cmp.Diff(tt.want, resp.Addresses, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
				want := strings.Replace(tt.message, "%s", s.Addr, 1)
				if !strings.HasPrefix(resp.Failure.Message, want) {
					t.Errorf("message = %q, want prefix %q", resp.Failure.Message, want)
				}
			}
			if class != tt.class {
				t.Errorf("class = %q, want %q (failure %v)", class, tt.class, resp.Failure)
			}
			attrs := ph.Attrs
			if _, ok := tt.attrs["server"]; ok {
				rtt, _ := attrs["rtt_ms"].(float64)
				if rtt <= 0 || rtt > float64(ph.Duration)/float64(time.Millisecond) {
					t.Errorf("rtt_ms = %v, phase %v", attrs["rtt_ms"], ph.Duration)
				}
				attrs = cloneWithout(attrs, "rtt_ms")
			}
			if diff := cmp.Diff(tt.attrs, attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func cloneWithout(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestResolveLiteral(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, map[string]cty.Value{"servers": servers(s.Addr)})
	for _, host := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			resp, ph := resolve(t, t.Context(), r, host)
			want := netip.MustParseAddr(host).Unmap()
			if diff := cmp.Diff([]netip.Addr{want}, resp.Addresses, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"addresses": []string{want.String()}, "literal": true}, ph.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			if ph.Duration > time.Millisecond {
				t.Errorf("literal took %v", ph.Duration)
			}
		})
	}
	if n := s.Queries(); n != 0 {
		t.Errorf("server saw %d queries for literals", n)
	}
}

// within fails the test unless min <= d < min+margin.
func within(t *testing.T, what string, d, min, margin time.Duration) {
	t.Helper()
	if d < min || d >= min+margin {
		t.Errorf("%s took %v, want [%v, %v)", what, d, min, min+margin)
	}
}

func TestResolveTiming(t *testing.T) {
	s := startDNS(t)
	// A delay is measured tightly; a timeout fires from a deadline that a
	// saturated machine may be late to act on, and only needs telling apart
	// from the default of 2s.
	const (
		delayMargin   = 40 * time.Millisecond
		timeoutMargin = 100 * time.Millisecond
	)

	t.Run("delay", func(t *testing.T) {
		r := newResolver(t, map[string]cty.Value{"servers": servers(s.Addr)})
		resp, ph := resolve(t, t.Context(), r, "slow.probe.test")
		if resp.Failure != nil {
			t.Fatal(resp.Failure)
		}
		within(t, "resolve phase", ph.Duration, 30*time.Millisecond, delayMargin)
		within(t, "rtt_ms", time.Duration(ph.Attrs["rtt_ms"].(float64)*float64(time.Millisecond)), 30*time.Millisecond, delayMargin)
	})

	tests := []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration // attempt deadline, 0 for none
		servers []string
		host    string
		class   sdk.Class
		queries int
		min     time.Duration // least phase duration (least total with ctx)
	}{
		{name: "silent", timeout: 150 * time.Millisecond, servers: []string{s.Addr},
			host: "silent.probe.test", class: sdk.ClassDNSTimeout, queries: 1, min: 150 * time.Millisecond},
		{name: "all silent", timeout: 100 * time.Millisecond, servers: []string{startSilent(t), startSilent(t)},
			host: "api.probe.test", class: sdk.ClassDNSTimeout, queries: 2, min: 200 * time.Millisecond},
		{name: "attempt deadline", timeout: 2 * time.Second, ctx: 80 * time.Millisecond, servers: []string{s.Addr, s.Addr},
			host: "silent.probe.test", class: sdk.ClassDNSTimeout, queries: 1, min: 80 * time.Millisecond},
		{name: "failover from silent", timeout: 100 * time.Millisecond, servers: []string{startSilent(t), s.Addr},
			host: "api.probe.test", queries: 2, min: 100 * time.Millisecond},
		{name: "failover from closed port", timeout: 100 * time.Millisecond, servers: []string{refusedAddr(t), s.Addr},
			host: "api.probe.test", queries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, map[string]cty.Value{
				"servers": servers(tt.servers...),
				"timeout": cty.StringVal(tt.timeout.String()),
			})
			begin := time.Now()
			ctx := t.Context()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			resp, ph := resolve(t, ctx, r, tt.host)
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
			}
			if class != tt.class {
				t.Fatalf("class = %q, want %q (failure %v)", class, tt.class, resp.Failure)
			}
			if ph.Attrs["queries"] != tt.queries {
				t.Errorf("queries = %v, want %d", ph.Attrs["queries"], tt.queries)
			}
			if tt.class == "" && ph.Attrs["server"] != s.Addr {
				t.Errorf("server = %v, want %s", ph.Attrs["server"], s.Addr)
			}
			if tt.class != "" && !strings.Contains(resp.Failure.Message, "@"+tt.servers[0]+": ") {
				t.Errorf("message %q does not name %s", resp.Failure.Message, tt.servers[0])
			}
			if tt.ctx > 0 {
				// The deadline runs from ctx's creation, a little before the
				// phase starts: check that the resolution outlived it.
				if e := time.Since(begin); e < tt.min {
					t.Errorf("resolve returned after %v, before %v", e, tt.min)
				}
				within(t, "resolve phase", ph.Duration, 0, tt.min+timeoutMargin)
				return
			}
			within(t, "resolve phase", ph.Duration, tt.min, timeoutMargin)
		})
	}
}

func refusedAddr(t *testing.T) string {
	t.Helper()
	a, err := lab.RefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

func TestResolveCanceled(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, map[string]cty.Value{"servers": servers(s.Addr)})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	resp, ph := resolve(t, ctx, r, "api.probe.test")
	if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
		t.Fatalf("failure = %v, want class %q", resp.Failure, sdk.ClassCanceled)
	}
	if ph.Attrs["queries"] != 0 || s.Queries() != 0 {
		t.Errorf("queries = %v, server saw %d, want none", ph.Attrs["queries"], s.Queries())
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]cty.Value
		servers []string // on success
		attr    string   // of the expected *sdk.AttrError
	}{
		{name: "ports", values: map[string]cty.Value{"servers": servers("192.0.2.1", "192.0.2.2:5353", "2001:db8::1", "[2001:db8::2]:5353")},
			servers: []string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:5353"}},
		{name: "tcp", values: map[string]cty.Value{"servers": servers("192.0.2.1"), "transport": cty.StringVal("tcp")},
			servers: []string{"192.0.2.1:53"}},
		{name: "no servers", values: map[string]cty.Value{"servers": cty.ListValEmpty(cty.String)}, attr: "servers"},
		{name: "name", values: map[string]cty.Value{"servers": servers("dns.example:53")}, attr: "servers"},
		{name: "bad second", values: map[string]cty.Value{"servers": servers("192.0.2.1", "192.0.2.300")}, attr: "servers"},
		{name: "port zero", values: map[string]cty.Value{"servers": servers("192.0.2.1:0")}, attr: "servers"},
		{name: "port range", values: map[string]cty.Value{"servers": servers("192.0.2.1:65536")}, attr: "servers"},
		{name: "unbalanced bracket", values: map[string]cty.Value{"servers": servers("2001:db8::1]:53")}, attr: "servers"},
		{name: "transport", values: map[string]cty.Value{"servers": servers("192.0.2.1"), "transport": cty.StringVal("quic")}, attr: "transport"},
		{name: "timeout syntax", values: map[string]cty.Value{"servers": servers("192.0.2.1"), "timeout": cty.StringVal("2")}, attr: "timeout"},
		{name: "timeout zero", values: map[string]cty.Value{"servers": servers("192.0.2.1"), "timeout": cty.StringVal("0s")}, attr: "timeout"},
		{name: "timeout negative", values: map[string]cty.Value{"servers": servers("192.0.2.1"), "timeout": cty.StringVal("-1s")}, attr: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Plugin().ResolverSchema.Config(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			r, err := New(cfg)
			if tt.attr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.servers, r.servers); diff != "" {
					t.Errorf("servers (-want +got):\n%s", diff)
				}
				return
			}
			ae, ok := sdk.AsAttrError(err)
			if !ok || ae.Attr != tt.attr {
				t.Fatalf("New() error = %v, want an *sdk.AttrError for %q", err, tt.attr)
			}
		})
	}
}

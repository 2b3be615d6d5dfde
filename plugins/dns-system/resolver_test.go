package dnssystem

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
)

// startDNS starts a lab DNS server for the reserved zone invalid., closed
// when the test ends. It refuses names under search domains, which Go's
// resolver may ask after the name itself; Go reports the name's own answer.
func startDNS(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("invalid.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	s.AddAddr("both.invalid.", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
	s.SetBehavior("servfail.invalid.", lab.DNSBehavior{Rcode: dns.RcodeServerFailure})
	s.SetBehavior("silent.invalid.", lab.DNSBehavior{Silent: true})
	return s
}

// newResolver builds a Resolver through the plugin's schema, as the core
// does. With s set, Go's resolver (prefer_go must be true) sends every query
// to s instead of the servers in /etc/resolv.conf, and dials counts its
// connections.
func newResolver(t *testing.T, s *lab.DNSServer, values map[string]cty.Value) (r *Resolver, dials *atomic.Int64) {
	t.Helper()
	p := Plugin()
	cfg, err := p.ResolverSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r = c.(*Resolver)
	dials = new(atomic.Int64)
	if s != nil {
		r.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		}
	}
	return r, dials
}

// resolve runs one resolution and checks the response's shape.
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

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestResolveLocalhost(t *testing.T) {
	s := startDNS(t)
	for _, preferGo := range []bool{false, true} {
		name := map[bool]string{false: platformResolver, true: "go"}[preferGo]
		t.Run(name, func(t *testing.T) {
			// getaddrinfo cannot be redirected; localhost comes from
			// /etc/hosts (or nss-myhostname) without a DNS query.
			var lab *lab.DNSServer
			if preferGo {
				lab = s
			}
			r, _ := newResolver(t, lab, map[string]cty.Value{"prefer_go": cty.BoolVal(preferGo)})
			resp, ph := resolve(t, t.Context(), r, "localhost")
			if resp.Failure != nil {
				t.Fatal(resp.Failure)
			}
			if len(resp.Addresses) == 0 {
				t.Fatal("no addresses")
			}
			strs := make([]string, len(resp.Addresses))
			for i, a := range resp.Addresses {
				if !a.IsLoopback() || a.Is4In6() {
					t.Errorf("address %v is not a plain loopback address", a)
				}
				strs[i] = a.String()
			}
			want := map[string]any{"addresses": strs, "resolver": name, "network": "ip"}
			if diff := cmp.Diff(want, ph.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveLiteral(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			r, _ := newResolver(t, nil, nil)
			resp, ph := resolve(t, t.Context(), r, host)
			want := netip.MustParseAddr(host).Unmap()
			if diff := cmp.Diff([]netip.Addr{want}, resp.Addresses, addrComparer); diff != "" {
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
}

func TestResolveLab(t *testing.T) {
	s := startDNS(t)
	tests := []struct {
		name    string
		host    string
		network string
		want    []string
		class   sdk.Class
	}{
		{name: "ip", host: "both.invalid", network: "ip", want: []string{"127.0.0.1", "::1"}}, // in any order
		{name: "ip4", host: "both.invalid", network: "ip4", want: []string{"127.0.0.1"}},
		{name: "ip6", host: "both.invalid", network: "ip6", want: []string{"::1"}},
		{name: "nxdomain", host: "nope.invalid", network: "ip", class: sdk.ClassDNSNXDomain},
		{name: "servfail", host: "servfail.invalid", network: "ip4", class: sdk.ClassDNSServFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dials := newResolver(t, s, map[string]cty.Value{"prefer_go": cty.True, "network": cty.StringVal(tt.network)})
			resp, ph := resolve(t, t.Context(), r, tt.host)
			if dials.Load() == 0 {
				t.Error("no query was sent to the lab")
			}
			want := map[string]any{"resolver": "go", "network": tt.network}
			if tt.class == "" {
				if resp.Failure != nil {
					t.Fatal(resp.Failure)
				}
				got := make([]string, len(resp.Addresses))
				for i, a := range resp.Addresses {
					got[i] = a.String()
				}
				want["addresses"] = got // checked here, in any order
				if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("addresses (-want +got):\n%s", diff)
				}
			} else {
				if resp.Failure == nil || resp.Failure.Class != tt.class {
					t.Fatalf("failure = %v, want class %q", resp.Failure, tt.class)
				}
				if !strings.Contains(resp.Failure.Message, tt.host) {
					t.Errorf("message %q does not name %s", resp.Failure.Message, tt.host)
				}
			}
			if diff := cmp.Diff(want, ph.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveDeadline(t *testing.T) {
	s := startDNS(t)
	const (
		after  = 150 * time.Millisecond
		margin = 100 * time.Millisecond // a saturated machine may act late on a deadline
	)
	tests := []struct {
		name    string
		timeout bool // the resolver's own timeout is after
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		class   sdk.Class
	}{
		{name: "own timeout", timeout: true, ctx: context.WithCancel, class: sdk.ClassDNSTimeout},
		{name: "attempt deadline", class: sdk.ClassDNSTimeout,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, after)
			}},
		{name: "canceled", class: sdk.ClassCanceled,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(after, cancel)
				return ctx, cancel
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := map[string]cty.Value{"prefer_go": cty.True}
			if tt.timeout {
				values["timeout"] = cty.StringVal(after.String())
			}
			r, _ := newResolver(t, s, values)
			begin := time.Now()
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			resp, ph := resolve(t, ctx, r, "silent.invalid")
			// A deadline or cancel from ctx runs from ctx's creation, a little
			// before the phase starts: check that the lookup outlived it.
			if e := time.Since(begin); e < after {
				t.Errorf("resolve returned after %v, before %v", e, after)
			}
			if resp.Failure == nil || resp.Failure.Class != tt.class {
				t.Fatalf("failure = %v, want class %q", resp.Failure, tt.class)
			}
			if (tt.timeout && ph.Duration < after) || ph.Duration >= after+margin {
				t.Errorf("resolve phase took %v, want [%v, %v)", ph.Duration, after, after+margin)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]cty.Value
		want   Resolver // on success
		attr   string   // of the expected *sdk.AttrError
	}{
		{name: "defaults", want: Resolver{network: "ip"}},
		{name: "set", values: map[string]cty.Value{"network": cty.StringVal("ip6"), "prefer_go": cty.True, "timeout": cty.StringVal("1s")},
			want: Resolver{network: "ip6", preferGo: true, timeout: time.Second}},
		{name: "network", values: map[string]cty.Value{"network": cty.StringVal("tcp")}, attr: "network"},
		{name: "timeout", values: map[string]cty.Value{"timeout": cty.StringVal("1 second")}, attr: "timeout"},
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
				if diff := cmp.Diff(tt.want, *r, cmp.AllowUnexported(Resolver{})); diff != "" {
					t.Errorf("resolver (-want +got):\n%s", diff)
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

// TestWarm checks that the warm-up New runs once per process completes,
// localhost being in /etc/hosts as TestResolveLocalhost needs too: its
// error is otherwise ignored, and a broken warm-up would leave the first
// lookup cold.
func TestWarm(t *testing.T) {
	start := time.Now()
	if err := warm(); err != nil {
		t.Fatalf("warm-up lookup: %v", err)
	}
	t.Logf("warm-up took %v", time.Since(start))
}

package dnssystem

import (
	"context"
	"net"
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

// startDNS starts a lab DNS server authoritative for the root zone, so that
// it answers every name Go's resolver may ask (search domains included), and
// closes it when the test ends.
func startDNS(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS(".")
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
// to s instead of the servers in /etc/resolv.conf.
func newResolver(t *testing.T, s *lab.DNSServer, values map[string]cty.Value) *Resolver {
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
	r := c.(*Resolver)
	if s != nil {
		r.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		}
	}
	return r
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
		name := map[bool]string{false: "system", true: "go"}[preferGo]
		t.Run(name, func(t *testing.T) {
			// The platform's resolver cannot be redirected; localhost comes
			// from /etc/hosts (or nss-myhostname) without a DNS query.
			var lab *lab.DNSServer
			if preferGo {
				lab = s
			}
			r := newResolver(t, lab, map[string]cty.Value{"prefer_go": cty.BoolVal(preferGo)})
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
			r := newResolver(t, nil, nil)
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
		{name: "ip", host: "both.invalid", network: "ip", want: []string{"127.0.0.1", "::1"}},
		{name: "ip4", host: "both.invalid", network: "ip4", want: []string{"127.0.0.1"}},
		{name: "ip6", host: "both.invalid", network: "ip6", want: []string{"::1"}},
		{name: "nxdomain", host: "nope.invalid", network: "ip", class: sdk.ClassDNSNXDomain},
		{name: "servfail", host: "servfail.invalid", network: "ip4", class: sdk.ClassDNSServFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, s, map[string]cty.Value{"prefer_go": cty.True, "network": cty.StringVal(tt.network)})
			before := s.Queries()
			resp, ph := resolve(t, t.Context(), r, tt.host)
			if s.Queries() == before {
				t.Error("the lab server saw no query")
			}
			want := map[string]any{"resolver": "go", "network": tt.network}
			if tt.class == "" {
				if resp.Failure != nil {
					t.Fatal(resp.Failure)
				}
				want["addresses"] = tt.want
				got := make([]string, len(resp.Addresses))
				for i, a := range resp.Addresses {
					got[i] = a.String()
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
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

func TestResolveTimeout(t *testing.T) {
	s := startDNS(t)
	const (
		timeout = 150 * time.Millisecond
		margin  = 60 * time.Millisecond
	)
	tests := []struct {
		name    string
		timeout time.Duration // the resolver's own
		ctx     time.Duration // the attempt's deadline
	}{
		{name: "own timeout", timeout: timeout},
		{name: "attempt deadline", ctx: timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := map[string]cty.Value{"prefer_go": cty.True}
			if tt.timeout > 0 {
				values["timeout"] = cty.StringVal(tt.timeout.String())
			}
			r := newResolver(t, s, values)
			ctx := t.Context()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			resp, ph := resolve(t, ctx, r, "silent.invalid")
			if resp.Failure == nil || resp.Failure.Class != sdk.ClassDNSTimeout {
				t.Fatalf("failure = %v, want class %q", resp.Failure, sdk.ClassDNSTimeout)
			}
			if ph.Duration < timeout || ph.Duration >= timeout+margin {
				t.Errorf("resolve phase took %v, want [%v, %v)", ph.Duration, timeout, timeout+margin)
			}
		})
	}
}

func TestResolveCanceled(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, s, map[string]cty.Value{"prefer_go": cty.True})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	resp, _ := resolve(t, ctx, r, "both.invalid")
	if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
		t.Fatalf("failure = %v, want class %q", resp.Failure, sdk.ClassCanceled)
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

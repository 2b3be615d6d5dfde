package tailscale

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

var backends = []string{backendLocal, backendTSNet}

func newResolver(t *testing.T, cfg cty.Value) *Resolver {
	t.Helper()
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// resolve resolves host within 10 s.
func resolve(t *testing.T, r *Resolver, host string) *sdk.ResolveResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: host, Port: 80})
	if err != nil {
		t.Fatalf("Resolve(%q) returned a Go error: %v", host, err)
	}
	return resp
}

func TestResolvePeers(t *testing.T) {
	both := []netip.Addr{tn.web, tn.web6}
	tests := []struct {
		name, host string
		want       []netip.Addr
	}{
		{"IPv4 address", tn.web.String(), []netip.Addr{tn.web}},
		{"IPv6 address", tn.web6.String(), []netip.Addr{tn.web6}},
		{"IPv4-mapped IPv6 address", "::ffff:" + tn.web.String(), []netip.Addr{tn.web}},
		{"FQDN", "web." + suffix, both},
		{"FQDN with the trailing dot", "web." + suffix + ".", both},
		{"short name", "web", both},
		{"short name in upper case", "WEB", both},
		{"DNS record of the tailnet", "db." + suffix, []netip.Addr{tn.web}},
		{"DNS record by short name", "db", []netip.Addr{tn.web}},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			r := newResolver(t, tn.config(sdk.KindResolver, backend, nil))
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					resp := resolve(t, r, tc.host)
					if resp.Failure != nil {
						t.Fatalf("Failure = %v, want none", resp.Failure)
					}
					if diff := cmp.Diff(tc.want, resp.Addresses, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
						t.Errorf("addresses (-want +got):\n%s", diff)
					}
					if len(resp.Phases) != 1 {
						t.Fatalf("got %d phases, want 1", len(resp.Phases))
					}
					p := resp.Phases[0]
					if p.Name != sdk.PhaseResolve || !p.OK || p.Start < 0 || p.Duration <= 0 || p.Duration > time.Second {
						t.Errorf("phase = %s ok=%v start=%v duration=%v, want an ok resolve within 1s", p.Name, p.OK, p.Start, p.Duration)
					}
					addrs := make([]string, len(tc.want))
					for i, a := range tc.want {
						addrs[i] = a.String()
					}
					want := map[string]any{"addresses": addrs, "peer": "web", "dns_name": "web." + suffix, "os": "linux", "online": true}
					got := map[string]any{}
					for k := range want {
						got[k] = p.Attrs[k]
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("attrs (-want +got):\n%s", diff)
					}
					switch path := p.Attrs["path"]; path {
					case "derp":
						if p.Attrs["derp_region"] != "test" {
							t.Errorf("derp_region = %v, want test", p.Attrs["derp_region"])
						}
					case "direct":
						if _, err := netip.ParseAddrPort(p.Attrs["endpoint"].(string)); err != nil {
							t.Errorf("endpoint = %v, want an address and port", p.Attrs["endpoint"])
						}
					default:
						t.Errorf("path = %v, want derp or direct", path)
					}
				})
			}
		})
	}
}

func TestResolveFailures(t *testing.T) {
	tests := []struct {
		name, host string
		want       sdk.Class
		offline    bool
	}{
		{"IPv4 address of no node", trapAddr.String(), ClassNotAPeer, false},
		{"IPv6 address of no node", "fd7a:115c:a1e0::dead", ClassNotAPeer, false},
		{"address outside the tailnet", "127.0.0.1", ClassNotAPeer, false},
		{"DNS record pointing outside the tailnet", "outside." + suffix, ClassNotAPeer, false},
		{"name of no node", "nosuch", sdk.ClassDNSNXDomain, false},
		{"name in another domain", "web.example.com", sdk.ClassDNSNXDomain, false},
		{"offline node by name", "gone", ClassOffline, true},
		{"offline node by address", tn.gone.String(), ClassOffline, true},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			r := newResolver(t, tn.config(sdk.KindResolver, backend, map[string]cty.Value{"ping": cty.True}))
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					trapped := tn.trapped.Load()
					resp := resolve(t, r, tc.host)
					if len(resp.Addresses) != 0 {
						t.Errorf("addresses %v, want none", resp.Addresses)
					}
					if f := resp.Failure; f == nil || f.Class != tc.want || f.Phase != sdk.PhaseResolve || f.Message == "" {
						t.Fatalf("Failure = %+v, want %s in resolve with a message", f, tc.want)
					}
					if len(resp.Phases) != 1 {
						t.Fatalf("got %d phases, want only resolve (no ping)", len(resp.Phases))
					}
					if p := resp.Phases[0]; p.Name != sdk.PhaseResolve || p.OK || p.Duration <= 0 || p.Duration > time.Second {
						t.Errorf("phase = %s ok=%v duration=%v, want a failed resolve within 1s", p.Name, p.OK, p.Duration)
					}
					if a := resp.Phases[0].Attrs; tc.offline && (a["peer"] != "gone" || a["online"] != false) {
						t.Errorf("attrs = %v, want peer gone, online false", a)
					}
					if n := tn.trapped.Load() - trapped; n != 0 {
						t.Errorf("%d connections fell through to the host's network", n)
					}
				})
			}
		})
	}
}

// TestResolvePing checks the ping phase: the path the pong took, and a
// latency the phase contains. Every path to or from the daemon is relayed;
// between the tests' tsnet node and web, a direct path comes up.
func TestResolvePing(t *testing.T) {
	tests := []struct {
		backend, host, path string
	}{
		{backendLocal, "web", "derp"},
		{backendTSNet, "daemon", "derp"},
		{backendTSNet, "web", "direct"},
	}
	for _, tc := range tests {
		t.Run(tc.backend+" to "+tc.host, func(t *testing.T) {
			r := newResolver(t, tn.config(sdk.KindResolver, tc.backend, map[string]cty.Value{"ping": cty.True}))
			// A direct path takes a few pings to come up; a relayed one
			// must stay relayed.
			rounds := 5
			if tc.path == "direct" {
				rounds = 20
			}
			var p sdk.Phase
			lost := 0
			for range rounds {
				resp := resolve(t, r, tc.host)
				// While the direct path comes up, a disco ping can go
				// unanswered (UDP); one such loss is tolerated there.
				if f := resp.Failure; f != nil && tc.path == "direct" && f.Class == ClassTimeout && lost == 0 {
					lost++
					continue
				}
				if resp.Failure != nil {
					t.Fatalf("Failure = %v, want none", resp.Failure)
				}
				if len(resp.Phases) != 2 {
					t.Fatalf("got %d phases, want resolve and ping", len(resp.Phases))
				}
				if p = resp.Phases[1]; p.Attrs["path"] == tc.path && tc.path == "direct" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if p.Name != PhasePing || !p.OK || p.Start <= 0 {
				t.Errorf("phase = %s ok=%v start=%v, want an ok ping after the resolve", p.Name, p.OK, p.Start)
			}
			if p.Attrs["path"] != tc.path {
				t.Errorf("path = %v, want %s (attrs %v)", p.Attrs["path"], tc.path, p.Attrs)
			}
			if tc.path == "derp" && p.Attrs["derp_region"] != "test" {
				t.Errorf("derp_region = %v, want test", p.Attrs["derp_region"])
			}
			latency, _ := p.Attrs["latency_ms"].(float64)
			if latency <= 0 || time.Duration(latency*float64(time.Millisecond)) > p.Duration || p.Duration > time.Second {
				t.Errorf("latency_ms = %v in a phase of %v, want a positive latency the phase contains, within 1s", p.Attrs["latency_ms"], p.Duration)
			}
		})
	}
}

func TestResolveUnavailable(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	tests := []struct {
		name string
		cfg  cty.Value
		ctx  context.Context
		want sdk.Class
	}{
		{"no tailscaled on the socket", tn.config(sdk.KindResolver, backendLocal,
			map[string]cty.Value{"socket": cty.StringVal(filepath.Join(t.TempDir(), "none.sock"))}), context.Background(), ClassUnavailable},
		{"tsnet without an auth key", tn.config(sdk.KindResolver, backendTSNet, map[string]cty.Value{
			"auth_key_env": cty.StringVal("PROBE_TEST_NO_SUCH_KEY"), "hostname": cty.StringVal("nokey"),
			"state_dir": cty.StringVal(t.TempDir())}), context.Background(), ClassUnavailable},
		{"deadline passed", tn.config(sdk.KindResolver, backendLocal, nil), expired, ClassTimeout},
		{"canceled", tn.config(sdk.KindResolver, backendLocal, nil), canceled, sdk.ClassCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newResolver(t, tc.cfg)
			ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
			defer cancel()
			resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: "web", Port: 80})
			if err != nil {
				t.Fatalf("Resolve returned a Go error: %v", err)
			}
			if f := resp.Failure; f == nil || f.Class != tc.want || f.Phase != sdk.PhaseResolve {
				t.Fatalf("Failure = %+v, want %s in resolve", f, tc.want)
			}
			if p := resp.Phases[0]; p.OK || p.Duration > 5*time.Second {
				t.Errorf("phase ok=%v duration=%v, want a failed phase within 5s", p.OK, p.Duration)
			}
		})
	}
}

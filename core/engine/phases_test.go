package engine_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// liar reports the phases and the failure it is given, whatever happened,
// as a buggy or hostile plugin can.
type liar struct {
	phases  []sdk.Phase
	failure *sdk.Failure
}

func (l liar) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	return &sdk.HandshakeResponse{Phases: l.phases, Failure: l.failure}, nil
}

// probeLiars probes a TCP server once through handshakes hs.
func probeLiars(t *testing.T, hs ...sdk.Handshaker) *engine.TargetResult {
	t.Helper()
	addr := startTCP(t)
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}, hs...)
	res := engine.New(engine.Options{}).Run(context.Background(), targets(1, addr, p))
	if n := len(res.Targets[0].Attempts); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	return res.Targets[0]
}

func phaseNames(a engine.Attempt) []string {
	var names []string
	for _, p := range a.Phases {
		names = append(names, p.Name)
	}
	return names
}

// TestNegativeDuration: a phase with a negative start or duration is no
// measurement: the attempt fails as plugin.error in the handshake's phase,
// which runs for the time the call took, not the plugin's figure.
func TestNegativeDuration(t *testing.T) {
	for _, p := range []sdk.Phase{
		{Name: "http", Duration: -time.Hour, OK: true},
		{Name: "http", Start: -time.Second, Duration: time.Millisecond, OK: true},
	} {
		t.Run(fmt.Sprintf("start %v duration %v", p.Start, p.Duration), func(t *testing.T) {
			a := probeLiars(t, liar{phases: []sdk.Phase{p}}).Attempts[0]
			if f := a.Failure; f == nil || f.Class != sdk.ClassPluginError || f.Phase != "hs" || !strings.Contains(f.Message, "negative start or duration") {
				t.Fatalf("failure %+v, want plugin.error in hs for a negative duration", a.Failure)
			}
			last := a.Phases[len(a.Phases)-1]
			if last.Name != "hs" || last.Start < 0 || last.Duration < 0 || last.Duration > time.Second || last.OK {
				t.Errorf("last phase %+v, want hs failed, measured by the engine", last)
			}
			if diff := cmp.Diff([]string{"resolve", "connect", "hs"}, phaseNames(a)); diff != "" {
				t.Errorf("phases (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPhaseNamesUnique: two phases of one name in an attempt, from two
// handshakes or from one, become "name", "name#2", ...; "total" (the key of
// attempt totals) is taken; a failure names the renamed phase.
func TestPhaseNamesUnique(t *testing.T) {
	ok := func(name string) sdk.Phase { return sdk.Phase{Name: name, Duration: time.Microsecond, OK: true} }
	tr := probeLiars(t,
		liar{phases: []sdk.Phase{ok("http")}},
		liar{phases: []sdk.Phase{ok("http"), ok("http")}},
		liar{phases: []sdk.Phase{ok("connect"), {Name: "total", Duration: time.Microsecond}},
			failure: &sdk.Failure{Phase: "total", Class: "test.failed", Message: "the last phase failed"}},
	)
	a := tr.Attempts[0]
	want := []string{"resolve", "connect", "http", "http#2", "http#3", "connect#2", "total#2"}
	if diff := cmp.Diff(want, phaseNames(a)); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	if a.Failure == nil || a.Failure.Phase != "total#2" {
		t.Errorf("failure %+v, want it in total#2", a.Failure)
	}
	if diff := cmp.Diff(append(want, engine.TotalPhase), tr.Phases); diff != "" {
		t.Errorf("target phases (-want +got):\n%s", diff)
	}
	for _, name := range want {
		if s := tr.Stats[name]; s.Count != 1 {
			t.Errorf("%s: %d samples, want 1", name, s.Count)
		}
	}
}

// TestNonFiniteAttrs: NaN and infinite attribute values, at any depth,
// become strings, so that every output can write the attempt; the
// plugin's own map is left alone.
func TestNonFiniteAttrs(t *testing.T) {
	attrs := map[string]any{
		"nan": math.NaN(), "inf": math.Inf(1), "fine": 2.5, "f32": float32(math.Inf(-1)),
		"nested": map[string]any{"list": []any{math.Inf(-1), 1.5}},
		"maps":   []map[string]any{{"x": math.NaN()}},
		"weird":  struct{ F float64 }{math.NaN()},
	}
	a := probeLiars(t, liar{phases: []sdk.Phase{{Name: "x", Duration: time.Microsecond, OK: true, Attrs: attrs}}}).Attempts[0]
	want := map[string]any{
		"nan": "NaN", "inf": "+Inf", "fine": 2.5, "f32": "-Inf",
		"nested": map[string]any{"list": []any{"-Inf", 1.5}},
		"maps":   []map[string]any{{"x": "NaN"}},
		"weird":  "(struct { F float64 }: json: unsupported value: NaN)",
	}
	if diff := cmp.Diff(want, a.Phases[2].Attrs); diff != "" {
		t.Errorf("attrs (-want +got):\n%s", diff)
	}
	if v, _ := attrs["inf"].(float64); !math.IsInf(v, 1) {
		t.Errorf("the plugin's map was changed: %v", attrs)
	}
}

// TestAddressCap: a round takes the first MaxAddresses of a resolution
// under "all" and "happy-eyeballs", and says so in the resolve phase; under
// "all" the later addresses' attempts point at the first instead of
// repeating the resolution's attributes.
func TestAddressCap(t *testing.T) {
	const n = 1000
	addrs := make([]netip.Addr, n)
	scripts := map[netip.Addr]script{}
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
		scripts[addrs[i]] = script{class: sdk.ClassTCPRefused}
	}
	d := &scriptedDialer{scripts: scripts, conns: map[netip.AddrPort]*trackedConn{}}
	capped := map[string]any{"n": n, "addresses_total": n, "addresses_probed": engine.MaxAddresses}

	t.Run("all", func(t *testing.T) {
		p := policyPipeline(engine.AddressAll, listResolver(addrs), d)
		tr := engine.New(engine.Options{}).Run(context.Background(), []*engine.Target{{Name: "t", Host: "h", Port: 1, Pipeline: p}}).Targets[0]
		if len(tr.Attempts) != engine.MaxAddresses {
			t.Fatalf("%d attempts, want %d", len(tr.Attempts), engine.MaxAddresses)
		}
		for i, a := range tr.Attempts {
			want := map[string]any{"shared_with": "127.1.0.0:1"}
			if i == 0 {
				want = capped
			}
			if a.Address.Addr() != addrs[i] || !cmp.Equal(want, a.Phases[0].Attrs) {
				t.Errorf("attempt %d at %v: resolve attrs %v, want %v at %v", i, a.Address, a.Phases[0].Attrs, want, addrs[i])
			}
		}
	})
	t.Run("happy-eyeballs", func(t *testing.T) {
		p := policyPipeline(engine.AddressHappyEyeballs, listResolver(addrs), d)
		a := engine.New(engine.Options{}).Probe(context.Background(), &engine.Target{Name: "t", Host: "h", Port: 1, Pipeline: p})
		if !cmp.Equal(capped, a.Phases[0].Attrs) {
			t.Errorf("resolve attrs %v, want %v", a.Phases[0].Attrs, capped)
		}
		if tried := a.Phases[1].Attrs["happy_eyeballs"].([]any); len(tried) != engine.MaxAddresses {
			t.Errorf("%d connection attempts, want %d", len(tried), engine.MaxAddresses)
		}
	})
	t.Run("under the cap", func(t *testing.T) {
		p := policyPipeline(engine.AddressAll, listResolver(slices.Clone(addrs[:3])), d)
		tr := engine.New(engine.Options{}).Run(context.Background(), []*engine.Target{{Name: "t", Host: "h", Port: 1, Pipeline: p}}).Targets[0]
		if len(tr.Attempts) != 3 || !cmp.Equal(map[string]any{"n": 3}, tr.Attempts[0].Phases[0].Attrs) {
			t.Errorf("%d attempts, first resolve attrs %v; want 3, unchanged", len(tr.Attempts), tr.Attempts[0].Phases[0].Attrs)
		}
	})
}

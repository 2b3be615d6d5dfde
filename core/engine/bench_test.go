package engine_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// BenchmarkProbe measures the engine's own cost of an attempt, with its
// allocations: a resolution, a loopback connect and a handshake, each
// recorded as a phase. `make bench` measures whole runs; this isolates the
// attempt path for a change to it (go test -bench Probe -benchmem).
func BenchmarkProbe(b *testing.B) {
	srv, err := lab.StartTCP("")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "r", Plugin: "test-resolver",
		Component: &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &engine.Pipeline{Name: "p", Resolvers: []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: "d", Plugin: "test-dialer", Component: netDialer{}},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: "hs", Plugin: "test-hs", Component: liar{phases: []sdk.Phase{{OK: true}}}}}}
	eng := engine.New(engine.Options{})
	t := &engine.Target{Name: "t", Host: "host.test", Port: srv.Addr.Port(), Pipeline: p}
	b.ReportAllocs()
	for b.Loop() {
		if a := eng.Probe(context.Background(), t); !a.OK {
			b.Fatalf("attempt failed: %v", a.Failure)
		}
	}
}

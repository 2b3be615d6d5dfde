package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// A Go program can build a pipeline from components and run it without a
// pipeline file.
func ExampleEngine_Run() {
	srv, err := lab.StartTCP("")
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	resolver := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: resolver}, nil)
	if err != nil {
		panic(err)
	}
	p := &engine.Pipeline{
		Name:      "tcp",
		Resolvers: []engine.Route{route},
		Dialer:    engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "net", Component: netDialer{}},
	}
	eng := engine.New(engine.Options{Attempts: 3, Timeout: 2 * time.Second})
	res := eng.Run(context.Background(), []*engine.Target{
		{Name: "local", Host: "localhost", Port: srv.Addr.Port(), Pipeline: p},
	})
	for _, tr := range res.Targets {
		fmt.Printf("%s: ok=%v attempts=%d phases=%v\n", tr.Target.Name, tr.OK, len(tr.Attempts), tr.Phases)
	}
	// Output: local: ok=true attempts=3 phases=[resolve connect total]
}

package engine_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// oneAddress is a resolver that answers every host with one address. Any
// sdk.Resolver will do: a plugin's, or a Go program's own.
type oneAddress struct{ addr netip.Addr }

func (r oneAddress) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{r.addr}, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// tcpDialer connects with sdk.DialTCP, the TCP connect of dial-tcp.
type tcpDialer struct{}

func (tcpDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return sdk.DialTCP(ctx, time.Now(), req.Address, nil), nil
}

// A Go program builds a pipeline from components and runs it without a
// pipeline file: each of the target's attempts resolves its host, connects
// and runs the pipeline's handshakes (none here), and the result holds the
// attempts and their statistics per phase.
func ExampleEngine_Run() {
	// server stands for the service probed: it accepts and closes.
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer server.Close()
	go func() {
		for {
			c, err := server.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()

	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "local", Plugin: "one-address",
		Component: oneAddress{netip.MustParseAddr("127.0.0.1")}}, nil) // nil: every host
	if err != nil {
		panic(err)
	}
	pipeline := &engine.Pipeline{
		Name:      "tcp",
		Resolvers: []engine.Route{route},
		Dialer:    engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "tcp", Component: tcpDialer{}},
	}
	target := &engine.Target{Name: "local", Host: "service.test",
		Port: server.Addr().(*net.TCPAddr).AddrPort().Port(), Pipeline: pipeline}

	eng := engine.New(engine.Options{Attempts: 3, Timeout: 2 * time.Second})
	res := eng.Run(context.Background(), []*engine.Target{target})
	for _, tr := range res.Targets {
		connect := tr.Stats[sdk.PhaseConnect]
		fmt.Printf("%s: ok=%v attempts=%d phases=%v connects=%d/%d\n",
			tr.Target.Name, tr.OK, len(tr.Attempts), tr.Phases, connect.OK, connect.Count)
	}
	fmt.Printf("targets=%d ok=%d failed=%d\n", res.Summary.Targets, res.Summary.OK, res.Summary.Failed)
	// Output:
	// local: ok=true attempts=3 phases=[resolve connect total] connects=3/3
	// targets=1 ok=1 failed=0
}

package sink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sink"
)

// oneAddress is a resolver that answers every host with one address.
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

// accept accepts connections on ln and closes them, until ln is closed.
func accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

// listen starts a loopback server that accepts and closes, for the test,
// and returns its port.
func listen(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go accept(ln)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort().Port()
}

func pipeline(t *testing.T) *engine.Pipeline {
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "local", Plugin: "one-address",
		Component: oneAddress{netip.MustParseAddr("127.0.0.1")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Pipeline{Name: "tcp", Resolvers: []engine.Route{route},
		Dialer: engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "tcp", Component: tcpDialer{}}}
}

// recorder records what a stream gives it; fail, when set, is what its
// Attempt returns.
type recorder struct {
	attempts []engine.Attempt
	flushes  int
	closed   []*engine.Result
	fail     error
}

func (r *recorder) Attempt(a *engine.Attempt) error {
	r.attempts = append(r.attempts, *a)
	return r.fail
}

func (r *recorder) Flush() error { r.flushes++; return nil }

func (r *recorder) Close(res *engine.Result) error { r.closed = append(r.closed, res); return nil }

// TestStream runs two targets through a stream of three sinks, one of
// which fails: the others get every attempt, redacted, and the result at
// close, redacted too; the failing one gets no attempt after its error,
// which Close returns.
func TestStream(t *testing.T) {
	p := pipeline(t)
	port := listen(t)
	targets := []*engine.Target{
		{Name: "api-s3cr3t-name", Host: "s3cr3t-name.test", Port: port, Pipeline: p},
		{Name: "web", Host: "web.test", Port: port, Pipeline: p},
	}
	eng := engine.New(engine.Options{Attempts: 3, Timeout: 2 * time.Second, Secrets: []string{"s3cr3t-name"}})
	first, failing, last := &recorder{}, &recorder{fail: errors.New("disk full")}, &recorder{}
	stream := sink.Attach(eng, first, failing, last)
	res := eng.Run(context.Background(), targets)
	err := stream.Close(res)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close returned %v, want the failing sink's error", err)
	}
	for _, r := range []*recorder{first, last} {
		names := map[string]int{}
		for _, a := range r.attempts {
			names[a.Target]++
		}
		if want := map[string]int{"api-(sensitive)": 3, "web": 3}; fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("a sink got attempts of %v, want %v", names, want)
		}
		if r.flushes != 1 || len(r.closed) != 1 || r.closed[0] != res {
			t.Errorf("a sink was flushed %d times and closed with %v, want once with the result", r.flushes, r.closed)
		}
	}
	if len(failing.attempts) != 1 || len(failing.closed) != 1 || failing.flushes != 0 {
		t.Errorf("the failing sink got %d attempts, %d flushes and %d closes, want 1, 0 and 1",
			len(failing.attempts), failing.flushes, len(failing.closed))
	}
	if tr := res.Targets[0]; tr.Target.Name != "api-(sensitive)" || tr.Target.Host != "(sensitive).test" || len(tr.Attempts) != 3 {
		t.Errorf("the result's first target is %+v with %d attempts", tr.Target, len(tr.Attempts))
	}
	if targets[0].Name != "api-s3cr3t-name" || targets[0].Host != "s3cr3t-name.test" {
		t.Errorf("the target probed was changed: %+v", targets[0])
	}
	if res.Targets[1].Target != targets[1] {
		t.Error("a target without a secret was copied")
	}
}

// targets is a TargetSink that records the targets it is given, by place,
// and how many of their attempts it had by then, and counts its Target
// calls; fail, when set, is what its Target returns.
type targets struct {
	recorder
	mu    sync.Mutex
	done  map[int]string
	calls int
	fail  error
}

func (r *targets) Attempt(a *engine.Attempt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recorder.Attempt(a)
}

func (r *targets) Target(i int, tr *engine.TargetResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		r.done = map[int]string{}
	}
	r.calls++
	had := 0
	for _, a := range r.attempts {
		if a.Target == tr.Target.Name {
			had++
		}
	}
	r.done[i] = fmt.Sprintf("%s: %d attempts, %d streamed, ok %v", tr.Target.Name, len(tr.Attempts), had, tr.OK)
	return r.fail
}

// TestTargetSink runs three targets, all at once, through a stream of two
// TargetSinks, one failing, and a plain sink: each TargetSink gets every
// target once, redacted, by its place in the run, after its last attempt
// and with its attempts, though the run discards the targets' results; the
// failing one gets no target once its error is known (in the first run,
// calls that overlap its first one may still come: Target's calls
// overlap), none in a second run, and Close returns its error.
func TestTargetSink(t *testing.T) {
	p := pipeline(t)
	port := listen(t)
	run := []*engine.Target{
		{Name: "api-s3cr3t", Host: "api.test", Port: port, Pipeline: p},
		{Name: "web", Host: "web.test", Port: port, Pipeline: p},
		{Name: "db", Host: "db.test", Port: port, Pipeline: p},
	}
	eng := engine.New(engine.Options{Attempts: 2, Concurrency: 3, Timeout: 2 * time.Second, Secrets: []string{"s3cr3t"},
		DiscardTargets: true})
	ok, failing, plain := &targets{}, &targets{fail: errors.New("disk full")}, &recorder{}
	stream := sink.Attach(eng, ok, failing, plain)
	res := eng.Run(context.Background(), run)
	want := map[int]string{0: "api-(sensitive): 2 attempts, 2 streamed, ok true", 1: "web: 2 attempts, 2 streamed, ok true",
		2: "db: 2 attempts, 2 streamed, ok true"}
	if diff := cmp.Diff(want, ok.done); diff != "" {
		t.Errorf("the targets given (-want +got):\n%s", diff)
	}
	first := failing.calls
	if first < 1 || len(res.Targets) != 0 || len(plain.attempts) != 6 {
		t.Errorf("the failing sink got %d targets, the result holds %d and the plain sink got %d attempts, want at least 1, 0 and 6",
			first, len(res.Targets), len(plain.attempts))
	}
	eng.Run(context.Background(), run)
	if failing.calls != first || ok.calls != 6 || len(plain.attempts) != 12 {
		t.Errorf("a second run gave the failing sink %d more targets, the other %d in all, the plain sink %d attempts in all; want 0, 6 and 12",
			failing.calls-first, ok.calls, len(plain.attempts))
	}
	if err := stream.Close(res); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close returned %v, want the failing sink's error", err)
	}
}

// okSink prints each attempt as it finishes, and the summary at the end.
type okSink struct{}

func (okSink) Attempt(a *engine.Attempt) error {
	fmt.Printf("%s #%d ok=%v phases=%d\n", a.Target, a.Seq, a.OK, len(a.Phases))
	return nil
}

func (okSink) Flush() error { return nil }

func (okSink) Close(res *engine.Result) error {
	fmt.Printf("%d targets: %d ok\n", res.Summary.Targets, res.Summary.OK)
	return nil
}

// A sink is three methods. Attach hangs it on an engine's stream of
// finished attempts, which the engine has redacted: the target's name holds
// a secret, and the sink never sees it.
func ExampleAttach() {
	// server stands for the service probed: it accepts and closes.
	server, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer server.Close()
	go accept(server)

	route, _ := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "local", Plugin: "one-address",
		Component: oneAddress{netip.MustParseAddr("127.0.0.1")}}, nil)
	p := &engine.Pipeline{Name: "tcp", Resolvers: []engine.Route{route},
		Dialer: engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "tcp", Component: tcpDialer{}}}
	target := &engine.Target{Name: "db-hunter2", Host: "db.test", Port: server.Addr().(*net.TCPAddr).AddrPort().Port(), Pipeline: p}

	eng := engine.New(engine.Options{Attempts: 2, Secrets: []string{"hunter2"}})
	stream := sink.Attach(eng, okSink{})
	res := eng.Run(context.Background(), []*engine.Target{target})
	if err := stream.Close(res); err != nil {
		fmt.Println(err)
	}
	// Output:
	// db-(sensitive) #1 ok=true phases=2
	// db-(sensitive) #2 ok=true phases=2
	// 1 targets: 1 ok
}

// discard is a sink that takes every attempt and keeps nothing.
type discard struct{}

func (discard) Attempt(*engine.Attempt) error { return nil }
func (discard) Flush() error                  { return nil }
func (discard) Close(*engine.Result) error    { return nil }

// BenchmarkStream measures a run's cost per attempt (a resolution and a
// loopback connect) without sinks and with three attached: what the stream
// adds to the attempt loop (go test -bench Stream -benchmem ./core/sink/).
func BenchmarkStream(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go accept(ln)
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "local", Plugin: "one-address",
		Component: oneAddress{netip.MustParseAddr("127.0.0.1")}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &engine.Pipeline{Name: "tcp", Resolvers: []engine.Route{route},
		Dialer: engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "tcp", Component: tcpDialer{}}}
	target := &engine.Target{Name: "t", Host: "t.test", Port: ln.Addr().(*net.TCPAddr).AddrPort().Port(), Pipeline: p}
	for _, sinks := range [][]sink.Sink{nil, {discard{}, discard{}, discard{}}} {
		b.Run(fmt.Sprintf("sinks=%d", len(sinks)), func(b *testing.B) {
			b.ReportAllocs()
			eng := engine.New(engine.Options{Attempts: b.N, DiscardAttempts: true})
			if sinks != nil {
				sink.Attach(eng, sinks...)
			}
			b.ResetTimer()
			if res := eng.Run(context.Background(), []*engine.Target{target}); res.Summary.OK != 1 {
				b.Fatalf("the run failed: %+v", res.Summary)
			}
		})
	}
}

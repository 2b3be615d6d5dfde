package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/leakcheck"
)

// delayResolver answers every host with addr after delay, as a slow DNS
// server would, and honours the attempt's deadline.
type delayResolver struct {
	addr  netip.Addr
	delay time.Duration
	calls atomic.Int32
}

func (r *delayResolver) Resolve(ctx context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	r.calls.Add(1)
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	select {
	case <-time.After(r.delay):
		return &sdk.ResolveResponse{Addresses: []netip.Addr{r.addr}, Phases: []sdk.Phase{span.End(true, nil)}}, nil
	case <-ctx.Done():
		return &sdk.ResolveResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseResolve, Class: sdk.ContextClass(ctx, sdk.ClassDNSTimeout), Message: ctx.Err().Error()}}, nil
	}
}

// netDialer connects with net.Dialer.
type netDialer struct{}

func (netDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", req.Address.String())
	if err != nil {
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: sdk.ClassTCPError, Message: err.Error()}}, nil
	}
	return &sdk.DialResponse{Conn: c, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// brokenHandshake misbehaves the way a buggy plugin can.
type brokenHandshake struct{ panics bool }

func (b brokenHandshake) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	if b.panics {
		panic("index out of range")
	}
	return nil, errors.New("cannot run")
}

func startTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	s, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr
}

func pipeline(t *testing.T, r sdk.Resolver, hs ...sdk.Handshaker) *engine.Pipeline {
	t.Helper()
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "r", Plugin: "test-resolver", Component: r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &engine.Pipeline{Name: "p", Resolvers: []engine.Route{route},
		Dialer: engine.Stage[sdk.Dialer]{Name: "d", Plugin: "test-dialer", Component: netDialer{}}}
	for _, h := range hs {
		p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: "hs", Plugin: "test-hs", Component: h})
	}
	return p
}

func targets(n int, addr netip.AddrPort, p *engine.Pipeline) []*engine.Target {
	var ts []*engine.Target
	for i := range n {
		ts = append(ts, &engine.Target{Name: string(rune('a' + i)), Host: "host.test", Port: addr.Port(), Pipeline: p})
	}
	return ts
}

func TestScheduling(t *testing.T) {
	addr := startTCP(t)
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	const delay = 40 * time.Millisecond
	tests := []struct {
		name     string
		opts     engine.Options
		min, max time.Duration
	}{
		{"parallel", engine.Options{Mode: engine.Parallel, Concurrency: 4}, delay, 3 * delay},
		{"sequential", engine.Options{Mode: engine.Sequential, Concurrency: 4}, 4 * delay, 8 * delay},
		{"concurrency 2", engine.Options{Concurrency: 2}, 2 * delay, 4 * delay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: delay})
			res := engine.New(tt.opts).Run(context.Background(), targets(4, addr, p))
			if res.Summary.OK != 4 {
				t.Fatalf("ok = %d, want 4: %+v", res.Summary.OK, res.Summary)
			}
			if res.Duration < tt.min || res.Duration > tt.max {
				t.Errorf("4 targets of %v took %v, want [%v, %v]", delay, res.Duration, tt.min, tt.max)
			}
		})
	}
}

// TestSchedule probes four targets every 200 ms, the last of which hangs
// until its 450 ms timeout: each target starts no earlier than its share of
// each round, the others' rounds do not wait for the hanging one, and its
// own attempts never overlap, the rounds it is still probing in skipped.
func TestSchedule(t *testing.T) {
	addr := startTCP(t)
	const every, n, timeout = 200 * time.Millisecond, 4, 450 * time.Millisecond
	ts := targets(n, addr, pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}))
	hang := ts[n-1]
	hang.Pipeline = pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: time.Hour})
	hang.Timeout = timeout

	e := engine.New(engine.Options{Concurrency: n})
	var mu sync.Mutex
	started := map[string][]time.Time{}
	e.OnAttempt(func(a engine.Attempt) {
		mu.Lock()
		defer mu.Unlock()
		started[a.Target] = append(started[a.Target], a.Started)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var rounds, skipped int
	t0 := time.Now()
	const run = 6*every + every/2 // the hanging target's second attempt ends at 1.2 s
	time.AfterFunc(run, cancel)
	e.Schedule(ctx, ts, every, func(s int) { rounds++; skipped += s })
	if took := time.Since(t0); took > run+time.Second {
		t.Errorf("Schedule returned %v after it started, %v after its context ended", took, took-run)
	}

	mu.Lock()
	defer mu.Unlock()
	if rounds < 6 {
		t.Errorf("%d rounds in %v, want at least 6", rounds, run)
	}
	for i, tg := range ts[:n-1] {
		if len(started[tg.Name]) < 6 {
			t.Errorf("target %s: %d attempts, want one a round, at least 6: a round waited for the hanging target", tg.Name, len(started[tg.Name]))
		}
		for k, at := range started[tg.Name] {
			if due := t0.Add(every*time.Duration(k) + every*time.Duration(i)/n); at.Before(due) {
				t.Errorf("target %s, round %d: started %v before its share of the round", tg.Name, k, due.Sub(at))
			}
		}
	}
	h := started[hang.Name]
	if len(h) < 2 {
		t.Fatalf("the hanging target: %d attempts, want at least 2", len(h))
	}
	for k := 1; k < len(h); k++ {
		if gap := h[k].Sub(h[k-1]); gap < timeout {
			t.Errorf("the hanging target's attempts %d and %d started %v apart, within its timeout %v: they overlapped", k-1, k, gap, timeout)
		}
	}
	if skipped < 3 {
		t.Errorf("%d targets skipped, want at least 3 (the hanging target while its attempt ran)", skipped)
	}
}

// busyProcessors starts perProcessor goroutines a processor (GOMAXPROCS)
// that only compute, yielding every 50 µs, and returns what stops them.
func busyProcessors(perProcessor int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range perProcessor * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					for start := time.Now(); time.Since(start) < 50*time.Microsecond; {
					}
					runtime.Gosched()
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// TestScheduleConcurrency probes, every 200 ms, more targets that hang
// until their 600 ms timeout than Run's default concurrency, and four that
// answer at once. By default, while the processors keep up, the schedule is
// bounded by nothing but its targets: the hanging ones all run at once and
// the others start on time. With Options.Concurrency set, no more run at
// once than it says; with the processors busy (goroutines that only
// compute), no more than Run's default.
func TestScheduleConcurrency(t *testing.T) {
	addr := startTCP(t)
	const every, timeout, healthy = 200 * time.Millisecond, 600 * time.Millisecond, 4
	hanging := 2*engine.DefaultConcurrency() + 8
	for _, tt := range []struct {
		concurrency int
		busy        bool
	}{{0, false}, {8, false}, {0, true}} {
		concurrency := tt.concurrency
		t.Run(fmt.Sprintf("concurrency=%d,busy=%v", concurrency, tt.busy), func(t *testing.T) {
			if tt.busy {
				defer busyProcessors(8)()
			}
			ts := targets(healthy+hanging, addr, pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}))
			slow := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: time.Hour})
			for _, tg := range ts[healthy:] {
				tg.Pipeline, tg.Timeout = slow, timeout
			}
			e := engine.New(engine.Options{Concurrency: concurrency})
			type span struct{ start, end time.Time }
			var mu sync.Mutex
			spans := map[string][]span{}
			e.OnAttempt(func(a engine.Attempt) {
				mu.Lock()
				defer mu.Unlock()
				spans[a.Target] = append(spans[a.Target], span{a.Started, time.Now()})
			})
			ctx, cancel := context.WithTimeout(context.Background(), 8*every)
			defer cancel()
			e.Schedule(ctx, ts, every, nil)

			mu.Lock()
			defer mu.Unlock()
			// The most attempts running at once: +1 at each start, -1 at
			// each end, in time order.
			type edge struct {
				at time.Time
				d  int
			}
			var edges []edge
			for _, ss := range spans {
				for _, s := range ss {
					edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
				}
			}
			slices.SortFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
			most, now := 0, 0
			for _, e := range edges {
				now += e.d
				most = max(most, now)
			}
			if concurrency > 0 {
				if most > concurrency {
					t.Errorf("%d attempts ran at once, want at most the concurrency set, %d", most, concurrency)
				}
				return
			}
			if tt.busy {
				if most > engine.DefaultConcurrency() {
					t.Errorf("%d attempts ran at once with the processors busy, want at most Run's default, %d", most, engine.DefaultConcurrency())
				}
				return
			}
			if most < hanging {
				t.Errorf("%d attempts ran at once, want all %d hanging targets' at least", most, hanging)
			}
			for _, tg := range ts[:healthy] {
				ss := spans[tg.Name]
				if len(ss) < 6 {
					t.Errorf("target %s: %d attempts in %v every %v, want at least 6", tg.Name, len(ss), 8*every, every)
				}
				for k := 1; k < len(ss); k++ {
					if late := ss[k].start.Sub(ss[k-1].start) - every; late > every/2 {
						t.Errorf("target %s: attempt %d started %v late, held back by the hanging targets", tg.Name, k, late)
					}
				}
			}
		})
	}
}

// TestDefaultConcurrency runs twice the default concurrency of targets
// that each take delay: two batches.
func TestDefaultConcurrency(t *testing.T) {
	addr := startTCP(t)
	n := engine.DefaultConcurrency()
	if want := engine.ConcurrencyPerProcessor * runtime.GOMAXPROCS(0); n != want || engine.New(engine.Options{}).Options().Concurrency != n {
		t.Fatalf("default concurrency %d, want %d per processor: %d", n, engine.ConcurrencyPerProcessor, want)
	}
	const delay = 40 * time.Millisecond
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: delay})
	res := engine.New(engine.Options{}).Run(context.Background(), targets(2*n, addr, p))
	if res.Summary.OK != 2*n {
		t.Fatalf("ok = %d, want %d: %+v", res.Summary.OK, 2*n, res.Summary)
	}
	if res.Duration < 2*delay || res.Duration > 4*delay {
		t.Errorf("%d targets of %v took %v, want two batches of %d: [%v, %v]", 2*n, delay, res.Duration, n, 2*delay, 4*delay)
	}
}

// TestRunSchedLatency runs targets whose attempts sleep in their resolver,
// once in a quiet process and once while goroutines that only compute keep
// every processor busy: the attempts then wait to be scheduled each time
// they wake, and the run says its timings are distorted.
func TestRunSchedLatency(t *testing.T) {
	addr := startTCP(t)
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: 40 * time.Millisecond})
	opts := engine.Options{Concurrency: 10, Attempts: 5}
	for _, overloaded := range []bool{false, true} {
		t.Run(fmt.Sprintf("overloaded=%v", overloaded), func(t *testing.T) {
			stop := func() {}
			if overloaded {
				stop = busyProcessors(4)
			}
			res := engine.New(opts).Run(context.Background(), targets(10, addr, p))
			stop()
			s := res.SchedLatency
			t.Logf("%+v", s)
			if res.Summary.OK != 10 || s.Samples == 0 {
				t.Fatalf("ok %d of 10, %d scheduling delays recorded", res.Summary.OK, s.Samples)
			}
			// The share of a quiet run is small but, from a few dozen
			// samples of which one may be a long stall of the machine,
			// uncertain; Distorted allows for that.
			if s.Distorted != overloaded || (overloaded && s.WaitShare < engine.DistortionShare) {
				t.Errorf("distorted %v with wait share %.3f, want %v", s.Distorted, s.WaitShare, overloaded)
			}
		})
	}
}

func TestAttemptsAndInterval(t *testing.T) {
	addr := startTCP(t)
	r := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	const interval = 60 * time.Millisecond
	res := engine.New(engine.Options{Attempts: 4, Interval: interval}).Run(context.Background(), targets(1, addr, pipeline(t, r)))
	tr := res.Targets[0]
	if len(tr.Attempts) != 4 || r.calls.Load() != 4 {
		t.Fatalf("%d attempts, %d resolves, want 4", len(tr.Attempts), r.calls.Load())
	}
	for i, a := range tr.Attempts {
		if a.Seq != i+1 || !a.OK {
			t.Errorf("attempt %d: seq %d ok %v", i, a.Seq, a.OK)
		}
		if i > 0 {
			if gap := a.Started.Sub(tr.Attempts[i-1].Started); gap < interval || gap > interval+40*time.Millisecond {
				t.Errorf("attempt %d started %v after the previous, want %v", a.Seq, gap, interval)
			}
		}
	}
	s := tr.Stats[sdk.PhaseResolve]
	if s.Count != 4 || s.OK != 4 || s.Min > s.P50 || s.P50 > s.Max {
		t.Errorf("resolve stats = %+v", s)
	}
}

func TestAttemptTiming(t *testing.T) {
	addr := startTCP(t)
	const delay = 30 * time.Millisecond
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: delay})
	a := engine.New(engine.Options{}).Probe(context.Background(), &engine.Target{Name: "t", Host: "h", Port: addr.Port(), Pipeline: p})
	if !a.OK || len(a.Phases) != 2 {
		t.Fatalf("attempt = %+v", a)
	}
	res, conn := a.Phases[0], a.Phases[1]
	if res.Duration < delay || res.Duration > delay+20*time.Millisecond {
		t.Errorf("resolve took %v, want %v and a little more", res.Duration, delay)
	}
	if res.Plugin != "test-resolver" || conn.Plugin != "test-dialer" {
		t.Errorf("plugins = %q, %q", res.Plugin, conn.Plugin)
	}
	if conn.Start < res.Start+res.Duration {
		t.Errorf("connect starts at %v, inside resolve [%v, +%v]", conn.Start, res.Start, res.Duration)
	}
	if sum := res.Duration + conn.Duration + a.Overhead; sum != a.Total {
		t.Errorf("phases %v + %v + overhead %v = %v, total %v", res.Duration, conn.Duration, a.Overhead, sum, a.Total)
	}
	if a.Overhead > time.Millisecond {
		t.Errorf("overhead %v, want well under a millisecond", a.Overhead)
	}
	if a.Address != addr {
		t.Errorf("address = %v, want %v", a.Address, addr)
	}
}

func TestFailures(t *testing.T) {
	addr := startTCP(t)
	refused := lab.Refused(t)
	fast := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	tests := []struct {
		name     string
		pipeline *engine.Pipeline
		port     uint16
		timeout  time.Duration
		phase    string
		class    sdk.Class
		phases   int
		minPhase time.Duration
	}{
		{"timeout in resolve", pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: time.Hour}),
			addr.Port(), 50 * time.Millisecond, sdk.PhaseResolve, sdk.ClassDNSTimeout, 1, 50 * time.Millisecond},
		{"connect fails", pipeline(t, fast), refused.Port(), time.Second, sdk.PhaseConnect, sdk.ClassTCPError, 2, 0},
		{"handshake errors", pipeline(t, fast, brokenHandshake{}), addr.Port(), time.Second, "hs", sdk.ClassPluginError, 3, 0},
		{"handshake panics", pipeline(t, fast, brokenHandshake{panics: true}), addr.Port(), time.Second, "hs", sdk.ClassPluginCrashed, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &engine.Target{Name: "t", Host: "h", Port: tt.port, Pipeline: tt.pipeline, Timeout: tt.timeout}
			a := engine.New(engine.Options{}).Probe(context.Background(), tg)
			if a.OK || a.Failure == nil || a.Failure.Phase != tt.phase || a.Failure.Class != tt.class {
				t.Fatalf("failure = %+v, want %s in %s", a.Failure, tt.class, tt.phase)
			}
			if len(a.Phases) != tt.phases {
				t.Fatalf("%d phases, want %d: %+v", len(a.Phases), tt.phases, a.Phases)
			}
			last := a.Phases[len(a.Phases)-1]
			if last.OK || last.Name != tt.phase || last.Duration < tt.minPhase {
				t.Errorf("failed phase = %+v, want %s failed after at least %v", last, tt.phase, tt.minPhase)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	lab4 := &delayResolver{addr: netip.MustParseAddr("127.0.0.1")}
	other := &delayResolver{addr: netip.MustParseAddr("127.0.0.2")}
	r1, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "tailnet", Component: lab4}, []string{"100.64.0.0/10", "*.ts.net"})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "system", Component: other}, nil)
	p := &engine.Pipeline{Resolvers: []engine.Route{r1, r2}}
	for host, want := range map[string]string{
		"100.64.0.10": "tailnet", "100.127.255.255": "tailnet", "100.128.0.1": "system",
		"box.tail1234.ts.net": "tailnet", "BOX.TS.NET.": "tailnet", "ts.net": "system", "example.com": "system",
	} {
		if got := p.Route(host).Name; got != want {
			t.Errorf("Route(%q) = %s, want %s", host, got, want)
		}
	}
	if _, err := engine.NewRoute(engine.Stage[sdk.Resolver]{}, []string{"10.0.0.0/40"}); err == nil {
		t.Error("NewRoute accepted a bad prefix")
	}
}

func TestCancelKeepsFinished(t *testing.T) {
	addr := startTCP(t)
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	fast := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1")})
	slow := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: time.Hour})
	// One target after another: "queued" never starts.
	ts := []*engine.Target{
		{Name: "fast", Host: "h", Port: addr.Port(), Pipeline: fast},
		{Name: "slow", Host: "h", Port: addr.Port(), Pipeline: slow, Timeout: time.Hour},
		{Name: "queued", Host: "h", Port: addr.Port(), Pipeline: fast},
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := engine.New(engine.Options{Mode: engine.Sequential}).Run(ctx, ts)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %v after cancel", took)
	}
	if !res.Interrupted {
		t.Error("Interrupted = false")
	}
	if got := len(res.Targets[0].Attempts); got != 1 || !res.Targets[0].OK {
		t.Errorf("fast target: %d attempts, ok %v; want its finished attempt kept", got, res.Targets[0].OK)
	}
	if got := len(res.Targets[1].Attempts); got != 0 {
		t.Errorf("slow target kept %d interrupted attempts", got)
	}
	// The slow target's attempt and the queued target were cut short: they
	// are interrupted, not failed.
	var interrupted []bool
	for _, tr := range res.Targets {
		interrupted = append(interrupted, tr.Interrupted)
	}
	if diff := cmp.Diff([]bool{false, true, true}, interrupted); diff != "" {
		t.Errorf("targets' Interrupted (-want +got):\n%s", diff)
	}
	want := engine.Summary{Targets: 3, OK: 1, Failed: 0, Interrupted: 2, FailuresByClass: map[sdk.Class]int{}}
	if diff := cmp.Diff(want, res.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

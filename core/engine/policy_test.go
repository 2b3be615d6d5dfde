package engine_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// listResolver answers every host with addrs.
type listResolver []netip.Addr

func (r listResolver) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	time.Sleep(5 * time.Millisecond)
	return &sdk.ResolveResponse{Addresses: r, Phases: []sdk.Phase{span.End(true, map[string]any{"n": len(r)})}}, nil
}

// script says how scriptedDialer treats one address: after delay it connects,
// or fails with class; hang waits for the context; stubborn connects after
// delay even when the context is canceled.
type script struct {
	delay    time.Duration
	class    sdk.Class
	hang     bool
	stubborn bool
}

// scriptedDialer dials by script and keeps every connection it handed out.
type scriptedDialer struct {
	scripts map[netip.Addr]script
	mu      sync.Mutex
	conns   map[netip.AddrPort]*trackedConn
}

type trackedConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *trackedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (d *scriptedDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
	s := d.scripts[req.Address.Addr()]
	fail := func(class sdk.Class) (*sdk.DialResponse, error) {
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: class, Message: "dial " + req.Address.String() + ": " + string(class)}}, nil
	}
	wait := time.NewTimer(s.delay)
	defer wait.Stop()
	if s.hang {
		<-ctx.Done()
		return fail(sdk.ContextClass(ctx, sdk.ClassTCPTimeout))
	}
	if s.stubborn {
		<-wait.C
	} else {
		select {
		case <-wait.C:
		case <-ctx.Done():
			return fail(sdk.ContextClass(ctx, sdk.ClassTCPTimeout))
		}
	}
	if s.class != "" {
		return fail(s.class)
	}
	client, server := net.Pipe()
	server.Close()
	c := &trackedConn{Conn: client}
	d.mu.Lock()
	d.conns[req.Address] = c
	d.mu.Unlock()
	return &sdk.DialResponse{Conn: c, Phases: []sdk.Phase{span.End(true, map[string]any{"remote": req.Address.String()})}}, nil
}

func policyPipeline(policy engine.AddressPolicy, r sdk.Resolver, d sdk.Dialer) *engine.Pipeline {
	route, _ := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "r", Plugin: "test-resolver", Component: r}, nil)
	return &engine.Pipeline{Name: "p", Resolvers: []engine.Route{route}, AddressPolicy: policy,
		Dialer: engine.Stage[sdk.Dialer]{Name: "d", Plugin: "test-dialer", Component: d}}
}

// he is one entry of the happy_eyeballs attribute, timings apart.
type he struct{ Address, Outcome string }

func TestHappyEyeballs(t *testing.T) {
	v4, v4b, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")
	const (
		delay  = engine.ConnectionAttemptDelay
		margin = 40 * time.Millisecond
	)
	ap := func(a netip.Addr) string { return netip.AddrPortFrom(a, 443).String() }
	tests := []struct {
		name    string
		addrs   []netip.Addr // in the resolver's order
		scripts map[netip.Addr]script
		winner  netip.Addr // invalid when all fail
		class   sdk.Class
		list    []he
		starts  []time.Duration // of each entry, from the phase's start
		phase   time.Duration   // the connect phase's duration, at least
		closed  []netip.Addr    // connections closed by the race
		wait    time.Duration   // for a loser that ignores cancellation: overhead
	}{
		{
			name: "IPv6 black hole", addrs: []netip.Addr{v4, v6},
			scripts: map[netip.Addr]script{v6: {hang: true}, v4: {delay: 10 * time.Millisecond}},
			winner:  v4, list: []he{{ap(v6), "canceled"}, {ap(v4), "won"}},
			starts: []time.Duration{0, delay}, phase: delay + 10*time.Millisecond,
		},
		{
			name: "IPv6 refused, IPv4 at once", addrs: []netip.Addr{v4, v6},
			scripts: map[netip.Addr]script{v6: {delay: 5 * time.Millisecond, class: sdk.ClassTCPRefused}, v4: {delay: 10 * time.Millisecond}},
			winner:  v4, list: []he{{ap(v6), "tcp.refused"}, {ap(v4), "won"}},
			starts: []time.Duration{0, 5 * time.Millisecond}, phase: 15 * time.Millisecond,
		},
		{
			name: "slow IPv6 still wins", addrs: []netip.Addr{v4, v6},
			scripts: map[netip.Addr]script{v6: {delay: delay + 30*time.Millisecond}, v4: {delay: 100 * time.Millisecond}},
			winner:  v6, list: []he{{ap(v6), "won"}, {ap(v4), "canceled"}},
			starts: []time.Duration{0, delay}, phase: delay + 30*time.Millisecond,
		},
		{
			name: "late loser closed", addrs: []netip.Addr{v6, v4},
			scripts: map[netip.Addr]script{v6: {delay: delay + 10*time.Millisecond}, v4: {delay: 20 * time.Millisecond, stubborn: true}},
			winner:  v6, list: []he{{ap(v6), "won"}, {ap(v4), "lost"}},
			starts: []time.Duration{0, delay}, phase: delay + 10*time.Millisecond, closed: []netip.Addr{v4}, wait: 10 * time.Millisecond,
		},
		{
			name: "interleaved", addrs: []netip.Addr{v4, v4b, v6},
			scripts: map[netip.Addr]script{v6: {class: sdk.ClassTCPUnreachable}, v4: {hang: true}, v4b: {delay: 10 * time.Millisecond}},
			winner:  v4b, list: []he{{ap(v6), "tcp.unreachable"}, {ap(v4), "canceled"}, {ap(v4b), "won"}},
			starts: []time.Duration{0, 0, delay}, phase: delay + 10*time.Millisecond,
		},
		{
			name: "all fail", addrs: []netip.Addr{v4, v6},
			scripts: map[netip.Addr]script{v6: {class: sdk.ClassTCPRefused}, v4: {delay: 10 * time.Millisecond, class: sdk.ClassTCPReset}},
			class:   sdk.ClassTCPRefused, list: []he{{ap(v6), "tcp.refused"}, {ap(v4), "tcp.reset"}},
			starts: []time.Duration{0, 0}, phase: 10 * time.Millisecond,
		},
		{
			name: "one address", addrs: []netip.Addr{v4},
			scripts: map[netip.Addr]script{v4: {delay: 10 * time.Millisecond}},
			winner:  v4, list: []he{{ap(v4), "won"}},
			starts: []time.Duration{0}, phase: 10 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &scriptedDialer{scripts: tt.scripts, conns: map[netip.AddrPort]*trackedConn{}}
			p := policyPipeline(engine.AddressHappyEyeballs, listResolver(tt.addrs), d)
			a := engine.New(engine.Options{Timeout: 2 * time.Second}).Probe(context.Background(), &engine.Target{Name: "t", Host: "h", Port: 443, Pipeline: p})
			if len(a.Phases) != 2 {
				t.Fatalf("phases = %+v", a.Phases)
			}
			ph := a.Phases[1]
			if tt.winner.IsValid() {
				if !a.OK || a.Address != netip.AddrPortFrom(tt.winner, 443) || !ph.OK {
					t.Fatalf("attempt ok %v address %v failure %v, want %v to win", a.OK, a.Address, a.Failure, tt.winner)
				}
				if ph.Attrs["remote"] != ap(tt.winner) {
					t.Errorf("connect attrs %v, want the winner's", ph.Attrs)
				}
			} else {
				if a.OK || a.Failure == nil || a.Failure.Class != tt.class || a.Failure.Phase != sdk.PhaseConnect || ph.OK {
					t.Fatalf("failure = %+v, want %s", a.Failure, tt.class)
				}
				for _, e := range tt.list {
					if !strings.Contains(a.Failure.Message, e.Address+": dial ") {
						t.Errorf("message %q does not name %s", a.Failure.Message, e.Address)
					}
				}
			}
			list, _ := ph.Attrs["happy_eyeballs"].([]any)
			var got []he
			for i, v := range list {
				m := v.(map[string]any)
				got = append(got, he{m["address"].(string), m["outcome"].(string)})
				start := time.Duration(m["start_ms"].(float64) * float64(time.Millisecond))
				dur := time.Duration(m["duration_ms"].(float64) * float64(time.Millisecond))
				if i < len(tt.starts) && (start < tt.starts[i] || start > tt.starts[i]+margin) {
					t.Errorf("%s started at %v, want %v", m["address"], start, tt.starts[i])
				}
				if dur < 0 || start+dur > ph.Duration+margin {
					t.Errorf("%s ran %v from %v, outside the phase of %v", m["address"], dur, start, ph.Duration)
				}
			}
			if diff := cmp.Diff(tt.list, got); diff != "" {
				t.Errorf("happy_eyeballs (-want +got):\n%s", diff)
			}
			if ph.Duration < tt.phase || ph.Duration > tt.phase+margin {
				t.Errorf("connect phase %v, want %v", ph.Duration, tt.phase)
			}
			if res := a.Phases[0]; ph.Start < res.Start+res.Duration {
				t.Errorf("connect starts at %v, inside resolve", ph.Start)
			}
			if a.Overhead < tt.wait || a.Overhead > tt.wait+20*time.Millisecond {
				t.Errorf("overhead %v, want %v: the race's waiting must be in the connect phase", a.Overhead, tt.wait)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			for addr, c := range d.conns { // the winner's is closed at the attempt's end, like any
				if !c.closed.Load() {
					t.Errorf("connection to %v left open", addr)
				}
			}
			for _, addr := range tt.closed {
				if d.conns[netip.AddrPortFrom(addr, 443)] == nil {
					t.Errorf("no connection to %v was made", addr)
				}
			}
		})
	}
}

func TestAddressAll(t *testing.T) {
	addr := startTCP(t)
	good, refused, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")
	p := policyPipeline(engine.AddressAll, listResolver{good, refused, v6}, netDialer{})
	const interval = 100 * time.Millisecond
	res := engine.New(engine.Options{Attempts: 2, Interval: interval}).Run(context.Background(),
		[]*engine.Target{{Name: "t", Host: "h", Port: addr.Port(), Pipeline: p}})
	tr := res.Targets[0]
	type row struct {
		Seq     int
		Address string
		OK      bool
	}
	var rows []row
	for _, a := range tr.Attempts {
		rows = append(rows, row{a.Seq, a.Address.String(), a.OK})
	}
	at := func(a netip.Addr) string { return netip.AddrPortFrom(a, addr.Port()).String() }
	want := []row{{1, at(good), true}, {1, at(refused), false}, {1, at(v6), false}, {2, at(good), true}, {2, at(refused), false}, {2, at(v6), false}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Fatalf("attempts (-want +got):\n%s", diff)
	}
	for i, a := range tr.Attempts {
		if len(a.Phases) != 2 {
			t.Fatalf("attempt %d phases %+v", i, a.Phases)
		}
		res, conn := a.Phases[0], a.Phases[1]
		// The round's resolution, its attributes stated once: in the
		// first address's attempt.
		wantAttrs := map[string]any{"n": 3}
		if i%3 > 0 {
			wantAttrs = map[string]any{"shared_with": at(good)}
		}
		if first := tr.Attempts[i/3*3].Phases[0]; res.Start != first.Start || res.Duration != first.Duration || !cmp.Equal(res.Attrs, wantAttrs) {
			t.Errorf("attempt %d: resolve %+v, want the round's %+v with attrs %v", i, res, first, wantAttrs)
		}
		if conn.Start < res.Start+res.Duration || conn.Start > res.Start+res.Duration+5*time.Millisecond {
			t.Errorf("attempt %d: connect starts at %v, want right after the resolution (%v)", i, conn.Start, res.Start+res.Duration)
		}
		if sum := res.Duration + conn.Duration + a.Overhead; sum != a.Total || a.Overhead > 5*time.Millisecond {
			t.Errorf("attempt %d: %v + %v + overhead %v, total %v", i, res.Duration, conn.Duration, a.Overhead, a.Total)
		}
		if !a.OK && (a.Failure == nil || a.Failure.Phase != sdk.PhaseConnect) {
			t.Errorf("attempt %d: failure %+v", i, a.Failure)
		}
		if i%3 > 0 && a.Started.Before(tr.Attempts[i-1].Started) {
			t.Errorf("attempt %d started before the one it followed", i)
		}
	}
	if gap := tr.Attempts[3].Started.Sub(tr.Attempts[0].Started); gap < interval || gap > interval+40*time.Millisecond {
		t.Errorf("round 2 started %v after round 1, want %v", gap, interval)
	}
	if s := tr.Stats[sdk.PhaseConnect]; s.Count != 6 || s.OK != 2 || tr.OK {
		t.Errorf("target: connect %+v, ok %v", s, tr.OK)
	}
	var byAddr []row
	for _, ar := range tr.ByAddress {
		s := ar.Stats[engine.TotalPhase]
		byAddr = append(byAddr, row{s.Count, ar.Address.String(), ar.OK})
		if ar.OK != (ar.Stats[sdk.PhaseConnect].OK == 2) || len(ar.Phases) != 3 {
			t.Errorf("%v: %+v", ar.Address, ar)
		}
		if !ar.OK && ar.FailuresByClass[sdk.ClassTCPError] != 2 {
			t.Errorf("%v failures %v", ar.Address, ar.FailuresByClass)
		}
	}
	if diff := cmp.Diff([]row{{2, at(good), true}, {2, at(refused), false}, {2, at(v6), false}}, byAddr); diff != "" {
		t.Errorf("by address (count, address, ok) (-want +got):\n%s", diff)
	}

	t.Run("deadline per address", func(t *testing.T) {
		d := &scriptedDialer{scripts: map[netip.Addr]script{good: {hang: true}, refused: {hang: true}}, conns: map[netip.AddrPort]*trackedConn{}}
		p := policyPipeline(engine.AddressAll, listResolver{good, refused}, d)
		const timeout = 100 * time.Millisecond
		start := time.Now()
		res := engine.New(engine.Options{Timeout: timeout}).Run(context.Background(), []*engine.Target{{Name: "t", Host: "h", Port: 1, Pipeline: p}})
		for _, a := range res.Targets[0].Attempts {
			if a.Failure == nil || a.Failure.Class != sdk.ClassTCPTimeout || a.Total < timeout || a.Total > timeout+40*time.Millisecond {
				t.Errorf("%v: total %v, failure %+v; want a timeout after %v", a.Address, a.Total, a.Failure, timeout)
			}
		}
		if took := time.Since(start); took < 2*timeout-10*time.Millisecond {
			t.Errorf("two hanging addresses took %v together, want each its own deadline", took)
		}
	})
	t.Run("probe", func(t *testing.T) {
		a := engine.New(engine.Options{}).Probe(context.Background(), &engine.Target{Name: "t", Host: "h", Port: addr.Port(), Pipeline: p})
		if !a.OK || a.Address.Addr() != good {
			t.Errorf("Probe = %+v, want the first address's attempt", a)
		}
	})
}

func TestInterleave(t *testing.T) {
	// interleave is internal; its order shows in happy_eyeballs.
	addrs := []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("::2"),
	}
	scripts := map[netip.Addr]script{}
	for _, a := range addrs {
		scripts[a] = script{class: sdk.ClassTCPRefused}
	}
	d := &scriptedDialer{scripts: scripts, conns: map[netip.AddrPort]*trackedConn{}}
	a := engine.New(engine.Options{}).Probe(context.Background(), &engine.Target{Name: "t", Host: "h", Port: 1,
		Pipeline: policyPipeline(engine.AddressHappyEyeballs, listResolver(addrs), d)})
	var got []string
	for _, v := range a.Phases[1].Attrs["happy_eyeballs"].([]any) {
		got = append(got, v.(map[string]any)["address"].(string))
	}
	want := []string{"[::1]:1", "127.0.0.1:1", "[::2]:1", "127.0.0.2:1", "127.0.0.3:1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

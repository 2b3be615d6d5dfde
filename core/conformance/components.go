package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// resolver checks a resolver: it answers set.Host, and fails set.FailHost
// as data.
func (c *checker) resolver(name string, r sdk.Resolver, set *Component) func() string {
	resolve := func(host string) (*sdk.ResolveResponse, time.Duration, string) {
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		start := time.Now()
		resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: host, Port: 443})
		if err != nil {
			return nil, 0, "returned an error instead of an answer: " + errText(err)
		}
		return resp, time.Since(start), ""
	}
	main := func() string {
		resp, took, problem := resolve(set.Host)
		if problem != "" {
			return problem
		}
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		switch {
		case set.WantFailure != "":
			problems = append(problems, wantFailure(resp.Failure, set.WantFailure))
		case resp.Failure != nil:
			problems = append(problems, fmt.Sprintf("failed as %s: %s; want the addresses of %s", resp.Failure.Class, oneLine(resp.Failure.Message), set.Host))
		case len(resp.Addresses) == 0:
			problems = append(problems, fmt.Sprintf("no address for %s, and no failure", set.Host))
		case len(set.Want) > 0 && !sameAddrs(resp.Addresses, set.Want):
			problems = append(problems, fmt.Sprintf("answered %v for %s, want %v", resp.Addresses, set.Host, set.Want))
		}
		return strings.Join(problems, "; ")
	}
	problem := main()
	c.add(name, sdk.KindResolver, "resolve", problem)
	if problem == "" && set.WantFailure == "" {
		c.resolvers = append(c.resolvers, configured[sdk.Resolver]{name, r, set})
	}
	c.resolverDeadline(name, r, set)
	if set.FailHost == "" {
		c.skip(name, sdk.KindResolver, "failure as data", "no fail_host in the check file")
		return main
	}
	resp, took, problem := resolve(set.FailHost)
	if problem == "" {
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		if resp.Failure == nil {
			problems = append(problems, fmt.Sprintf("resolved %s to %v; want a failure", set.FailHost, resp.Addresses))
		} else {
			problems = append(problems, failureProblem(resp.Failure))
		}
		problem = strings.Join(problems, "; ")
	}
	c.add(name, sdk.KindResolver, "failure as data", problem)
	return main
}

func sameAddrs(a, b []netip.Addr) bool {
	return slices.Equal(slices.SortedFunc(slices.Values(a), netip.Addr.Compare), slices.SortedFunc(slices.Values(b), netip.Addr.Compare))
}

// dialer checks a dialer of sockets (sdk.ConnStream): it hands back a real
// socket to the echo server (or to the proxy set.Via, tunnelled to it) and
// keeps no copy of it, and fails to connect to a closed port as data.
func (c *checker) dialer(name string, d sdk.Dialer, set *Component) func() string {
	dial := func(addr netip.AddrPort) (*sdk.DialResponse, time.Duration, string) {
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		start := time.Now()
		resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: set.Host})
		if err != nil {
			return nil, 0, "returned an error instead of an answer: " + errText(err)
		}
		return resp, time.Since(start), ""
	}
	main := func() string {
		srv, err := c.env.server(ServerEcho, answer)
		if err != nil {
			return errText(err)
		}
		base := srv.open()
		resp, took, problem := dial(srv.addr)
		if problem != "" {
			return problem
		}
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		if set.WantFailure != "" {
			if resp.Conn != nil {
				_ = resp.Conn.Close()
			}
			return strings.Join(append(problems, wantFailure(resp.Failure, set.WantFailure)), "; ")
		}
		switch {
		case resp.Failure != nil:
			problems = append(problems, fmt.Sprintf("failed as %s: %s; want a connection to %s", resp.Failure.Class, oneLine(resp.Failure.Message), srv.addr))
		case resp.Conn == nil:
			problems = append(problems, "answered neither a connection nor a failure")
		default:
			problems = append(problems, echoes(resp.Conn, srv.addr, set.Via))
			_ = resp.Conn.Close()
			if n := srv.waitOpen(closeWithin, base); n > base {
				problems = append(problems, fmt.Sprintf("the server saw no close %v after probe closed the connection: the plugin kept a copy of the socket", closeWithin))
			}
		}
		return strings.Join(problems, "; ")
	}
	problem := main()
	c.add(name, sdk.KindDialer, "dial", problem)
	if problem == "" && set.WantFailure == "" {
		c.dialers = append(c.dialers, configured[sdk.Dialer]{name, d, set})
	}
	resp, took, problem := dial(c.env.refused.Addr)
	if problem == "" {
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		if resp.Failure == nil {
			problems = append(problems, fmt.Sprintf("connected to %s, where nothing listens; want a failure", c.env.refused.Addr))
			if resp.Conn != nil {
				_ = resp.Conn.Close()
			}
		} else {
			problems = append(problems, failureProblem(resp.Failure))
		}
		problem = strings.Join(problems, "; ")
	}
	c.add(name, sdk.KindDialer, "failure as data", problem)
	c.dialerDeadline(name, d, set)
	return main
}

// dialerDeadline checks that a connect to a port that answers no SYN ends
// by the deadline.
func (c *checker) dialerDeadline(name string, d sdk.Dialer, set *Component) {
	ctx, cancel := context.WithTimeout(c.ctx, deadlineTimeout)
	defer cancel()
	start := time.Now()
	resp, err := d.Dial(ctx, &sdk.DialRequest{Address: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.env.silent.Port), Host: set.Host})
	took := time.Since(start)
	if err != nil {
		c.add(name, sdk.KindDialer, "deadline", "returned an error instead of an answer: "+errText(err))
		return
	}
	if resp.Conn != nil {
		_ = resp.Conn.Close()
	}
	c.add(name, sdk.KindDialer, "deadline", deadlineProblem(resp.Failure, took, "connected to a port that answers no SYN"))
}

// resolverDeadline checks that a resolver that asks the check's DNS server
// (its host is in probe.test) ends by the deadline when the server never
// answers.
func (c *checker) resolverDeadline(name string, r sdk.Resolver, set *Component) {
	if !strings.HasSuffix(strings.TrimSuffix(set.Host, "."), ".probe.test") {
		c.skip(name, sdk.KindResolver, "deadline", "it does not ask the check's DNS server (its host is not in probe.test)")
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, deadlineTimeout)
	defer cancel()
	start := time.Now()
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: "silent.probe.test", Port: 443})
	took := time.Since(start)
	if err != nil {
		c.add(name, sdk.KindResolver, "deadline", "returned an error instead of an answer: "+errText(err))
		return
	}
	c.add(name, sdk.KindResolver, "deadline", deadlineProblem(resp.Failure, took, "resolved a name whose server never answers"))
}

// deadlineProblem checks a call that the deadline must have ended: a
// failure of the target, not a hang.
func deadlineProblem(f *sdk.Failure, took time.Duration, succeeded string) string {
	switch {
	case f == nil:
		return succeeded
	case f.Class == sdk.ClassPluginCrashed && strings.Contains(f.Message, "hung"):
		return fmt.Sprintf("no answer %v after the call's %v deadline: it ignores its context's deadline (probe restarted the plugin)", took.Round(time.Millisecond), deadlineTimeout)
	}
	return failureProblem(f)
}

// echoes checks that conn is a socket connected to the echo server at
// addr, or through a proxy at via: what it writes comes back.
func echoes(conn net.Conn, addr netip.AddrPort, via string) string {
	if _, ok := conn.(syscall.Conn); !ok {
		return fmt.Sprintf("the connection is a %T, not a socket", conn)
	}
	want := addr.String()
	if via != "" {
		want = via
	}
	if got := conn.RemoteAddr(); got == nil || got.String() != want {
		return fmt.Sprintf("the connection's remote address is %v, want %s", got, want)
	}
	_ = conn.SetDeadline(time.Now().Add(callTimeout))
	const msg = "probe plugins check\n"
	if _, err := io.WriteString(conn, msg); err != nil {
		return "write to the connection: " + errText(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return "read the echo server's answer: " + errText(err)
	}
	if string(buf) != msg {
		return fmt.Sprintf("the echo server answered %q to %q: not the connection asked for", buf, msg)
	}
	return ""
}

// timed is a handshake whose call probe times on its side.
type timed struct {
	h          sdk.Handshaker
	start, end time.Time
}

func (t *timed) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	t.start = time.Now()
	defer func() { t.end = time.Now() }()
	return t.h.Handshake(ctx, req)
}

// HandshakeLast lets the plugin close the connection itself after the last
// handshake, as in a pipeline.
func (t *timed) HandshakeLast(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	t.start = time.Now()
	defer func() { t.end = time.Now() }()
	if ch, ok := t.h.(engine.ClosingHandshaker); ok {
		return ch.HandshakeLast(ctx, req)
	}
	return t.h.Handshake(ctx, req)
}

// holding is a dialer in a plugin process told the handshake after it
// unwrapped from its timing, so that it keeps the connection for it when
// both are in its process, as in a pipeline: a QUIC connection cannot
// travel.
type holding struct{ d engine.HoldingDialer }

func (h holding) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return h.d.DialBefore(ctx, req, nil)
}

func (h holding) DialBefore(ctx context.Context, req *sdk.DialRequest, next sdk.Handshaker) (*sdk.DialResponse, error) {
	if t, ok := next.(*timed); ok {
		next = t.h
	}
	return h.d.DialBefore(ctx, req, next)
}

// static answers 127.0.0.1 for every host.
type static struct{}

func (static) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// tcpDialer connects as dial-tcp does.
type tcpDialer struct{}

func (tcpDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return sdk.DialTCP(ctx, time.Now(), req.Address, nil), nil
}

// tcpStage is the dialer of a handshake over a socket: dial-tcp's, in
// probe's process.
var tcpStage = engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "dial-tcp", Component: tcpDialer{}}

// udpDialer connects a UDP socket as dial-udp does.
type udpDialer struct{}

func (udpDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Now())
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", req.Address.String())
	if err != nil {
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: sdk.Class("udp.error"), Message: err.Error()}}, nil
	}
	return &sdk.DialResponse{Conn: conn, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// udpStage is the dialer of a handshake against ServerUDP: a connected UDP
// socket, as dial-udp's, in probe's process.
var udpStage = engine.Stage[sdk.Dialer]{Name: "udp", Plugin: "dial-udp", Component: udpDialer{}}

// attempt runs one attempt of a pipeline whose dialer is d and handshake
// h, against srv, within timeout and ctx, as the engine runs a pipeline.
func (c *checker) attempt(ctx context.Context, d engine.Stage[sdk.Dialer], name string, h sdk.Handshaker, host string, srv *server, timeout time.Duration) (engine.Attempt, *timed) {
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: static{}}, nil)
	if err != nil {
		panic(err) // no match patterns: it cannot fail
	}
	tm := &timed{h: h}
	if hd, ok := d.Component.(engine.HoldingDialer); ok {
		d.Component = holding{hd}
	}
	p := &engine.Pipeline{
		Name:       "check",
		Resolvers:  []engine.Route{route},
		Dialer:     d,
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: name, Plugin: name, Component: tm}},
	}
	eng := engine.New(engine.Options{Timeout: timeout})
	return eng.Probe(ctx, &engine.Target{Name: "check", Host: host, Port: srv.addr.Port(), Pipeline: p}), tm
}

// handshakePhases returns the phases of the attempt's handshake: those
// after resolve and connect.
func handshakePhases(a engine.Attempt) []engine.Phase {
	if len(a.Phases) <= 2 {
		return nil
	}
	return a.Phases[2:]
}

// handshaker checks a handshake against the server set names: it succeeds
// and its phase measures the server's answer, it fails as data when the
// server hangs up, it keeps no socket, it honours the attempt's deadline
// and stops when canceled.
func (c *checker) handshaker(p *sdk.Plugin, h sdk.Handshaker, set *Component) func() string {
	name, k := p.Info.Name, sdk.KindHandshake
	dial := tcpStage
	if set.Server == ServerUDP {
		dial = udpStage
	}
	if p.HandshakeConn == sdk.ConnQUIC {
		var why string
		if dial, why = c.quicStage(set); why != "" {
			for _, check := range []string{"handshake", "timing", "no socket kept", "failure as data", "deadline", "cancel"} {
				c.skip(name, k, check, why)
			}
			return nil
		}
	}
	srv, err := c.env.server(set.Server, answer)
	if err != nil {
		c.add(name, k, "handshake", errText(err))
		return nil
	}
	var first engine.Attempt
	var firstTimed *timed
	main := func() string {
		a, tm := c.attempt(c.ctx, dial, name, h, set.Host, srv, callTimeout)
		first, firstTimed = a, tm
		problems := AttemptProblems(a)
		switch {
		case set.WantFailure != "":
			problems = append(problems, wantFailure(a.Failure, set.WantFailure))
		case !a.OK:
			problems = append(problems, fmt.Sprintf("failed as %s in %s: %s; want ok against the %s server", a.Failure.Class, a.Failure.Phase, oneLine(a.Failure.Message), set.Server))
		case len(handshakePhases(a)) == 0:
			problems = append(problems, "no phase of the handshake")
		}
		return strings.Join(problems, "; ")
	}
	base := srv.open()
	problem := main()
	c.add(name, k, "handshake", problem)
	if problem == "" && set.WantFailure == "" && p.HandshakeConn == sdk.ConnStream && set.Server != ServerUDP {
		c.handshakers = append(c.handshakers, configured[sdk.Handshaker]{name, h, set})
	}
	if set.WantFailure != "" {
		for _, check := range []string{"timing", "no socket kept", "failure as data", "deadline", "cancel"} {
			c.skip(name, k, check, "the check file wants the handshake to fail")
		}
		return main
	}
	c.add(name, k, "timing", timingProblem(first, firstTimed, srv))

	// The socket: the server sees every connection closed after its attempt.
	if set.Server == ServerUDP {
		c.skip(name, k, "no socket kept", "UDP has no connection whose close the server could see")
	} else {
		for range leakAttempts - 1 {
			c.attempt(c.ctx, dial, name, h, set.Host, srv, callTimeout)
		}
		if n := srv.waitOpen(closeWithin, base); n > base {
			c.add(name, k, "no socket kept", fmt.Sprintf("%d of %d connections still open %v after their attempts ended: the plugin keeps the socket (a duplicate, or a connection never closed)", n-base, leakAttempts, closeWithin))
		} else {
			c.add(name, k, "no socket kept")
		}
	}

	// A server that hangs up: a failure of the target, as data.
	if hung, err := c.env.server(set.Server, hangUp); err != nil {
		c.add(name, k, "failure as data", errText(err))
	} else {
		a, _ := c.attempt(c.ctx, dial, name, h, set.Host, hung, callTimeout)
		problems := AttemptProblems(a)
		switch {
		case a.OK:
			problems = append(problems, "succeeded against a server that closes the connection at once")
		case len(handshakePhases(a)) == 0:
			problems = append(problems, fmt.Sprintf("failed in %s, before the handshake: %s", a.Failure.Phase, oneLine(a.Failure.Message)))
		default:
			problems = append(problems, failureProblem(a.Failure))
		}
		c.add(name, k, "failure as data", strings.Join(problems, "; "))
	}

	mute, err := c.env.server(set.Server, silent)
	if err != nil {
		c.add(name, k, "deadline", errText(err))
		return main
	}
	// A server that never answers: the deadline ends the handshake.
	start := time.Now()
	a, _ := c.attempt(c.ctx, dial, name, h, set.Host, mute, deadlineTimeout)
	took := time.Since(start)
	problems := AttemptProblems(a)
	problems = append(problems, deadlineProblem(a.Failure, took, "succeeded against a server that never answers"))
	c.add(name, k, "deadline", strings.Join(problems, "; "))
	if a.Failure != nil && a.Failure.Class == sdk.ClassPluginCrashed {
		main() // probe restarts the plugin it found hung: wait for it
	}

	// Canceled mid-call: the plugin lets go of the connection.
	base = mute.waitOpen(closeWithin, 0)
	ctx, cancel := context.WithCancel(c.ctx)
	stop := time.AfterFunc(cancelAfter, cancel)
	a, _ = c.attempt(ctx, dial, name, h, set.Host, mute, callTimeout)
	stop.Stop()
	cancel()
	problem = ""
	switch {
	case a.OK:
		problem = "succeeded against a server that never answers"
	case a.Failure.Class != sdk.ClassCanceled:
		problem = fmt.Sprintf("failed as %s (%s), want %s", a.Failure.Class, oneLine(a.Failure.Message), sdk.ClassCanceled)
	default:
		if n := mute.waitOpen(closeWithin, base); n > base {
			problem = fmt.Sprintf("the connection was still open %v after the attempt was canceled: the handshake does not stop when its context is canceled", closeWithin)
		}
	}
	c.add(name, k, "cancel", problem)
	return main
}

// timingProblem checks the handshake's phases of a: within the call as
// probe timed it, and at least half as long as the server held its answer
// after the call began.
func timingProblem(a engine.Attempt, tm *timed, srv *server) string {
	phases := handshakePhases(a)
	if !a.OK || len(phases) == 0 || tm == nil {
		return "no handshake to time: it did not succeed"
	}
	took := tm.end.Sub(tm.start)
	var sum time.Duration
	for _, p := range phases {
		sum += p.Duration
	}
	if sum > took {
		return fmt.Sprintf("the handshake's phases last %v, but the call took %v on probe's side: a phase measures the work, in the plugin", sum, took)
	}
	// The plugin takes the call after the socket's handoff and an RPC,
	// which a busy machine can stretch to milliseconds: the phases must
	// cover half the server's hold, not all of it.
	held := serverDelay - tm.start.Sub(srv.accepted())
	if sum < held/2 {
		return fmt.Sprintf("the handshake's phases last %v, but the server held its answer %v after the call began: a phase measures the exchange with the server", sum, held.Round(10*time.Microsecond))
	}
	return ""
}

// ctyObject renders attributes as HCL-ish JSON.
func ctyObject(m map[string]cty.Value) string {
	v := cty.ObjectVal(m)
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.GoString()
	}
	return string(b)
}

// whole runs an attempt of the binary's first resolver, dialer and
// handshake that succeeded alone, all three in the plugin process, as probe
// runs a pipeline of them: as one request (Sequences) when the binary
// serves it, else one call each. It must succeed, keep the attempt's rules
// and no socket.
func (c *checker) whole() {
	if len(c.resolvers) == 0 || len(c.dialers) == 0 || len(c.handshakers) == 0 {
		c.skip("", "", "whole attempt", "the binary serves no resolver, dialer and handshake that each succeed")
		return
	}
	r, d, h := c.resolvers[0], c.dialers[0], c.handshakers[0]
	srv, err := c.env.server(h.set.Server, answer)
	if err != nil {
		c.add("", "", "whole attempt", errText(err))
		return
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: r.name, Plugin: r.name, Component: r.comp}, nil)
	if err != nil {
		panic(err) // no match patterns: it cannot fail
	}
	p := &engine.Pipeline{
		Name:       "whole",
		Resolvers:  []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: d.name, Plugin: d.name, Component: d.comp},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: h.name, Plugin: h.name, Component: h.comp}},
	}
	base := srv.open()
	a := engine.New(engine.Options{Timeout: callTimeout}).Probe(c.ctx, &engine.Target{Name: "whole", Host: r.set.Host, Port: srv.addr.Port(), Pipeline: p})
	problems := AttemptProblems(a)
	if !a.OK {
		problems = append(problems, fmt.Sprintf("resolver, dialer and handshake of %s, %s and %s (against the %s server) failed as %s in %s: %s",
			r.name, d.name, h.name, h.set.Server, a.Failure.Class, a.Failure.Phase, oneLine(a.Failure.Message)))
	}
	if n := srv.waitOpen(closeWithin, base); n > base {
		problems = append(problems, fmt.Sprintf("the connection was still open %v after the attempt", closeWithin))
	}
	c.add("", "", "whole attempt", strings.Join(problems, "; "))
}

// quicStage returns the dialer a handshake over QUIC is checked with: the
// first QUIC dialer of the binary, configured as the check file says,
// since a QUIC connection cannot leave the process that dialed it. why
// says why there is none.
func (c *checker) quicStage(set *Component) (d engine.Stage[sdk.Dialer], why string) {
	if set.Server != ServerHTTP3 {
		return d, fmt.Sprintf("a handshake over QUIC is checked against the %s server (server = %q in the check file), not %s", ServerHTTP3, ServerHTTP3, set.Server)
	}
	for _, p := range c.plugins {
		if !p.Serves(sdk.KindDialer) || p.DialerConn != sdk.ConnQUIC {
			continue
		}
		ds := c.file.component(sdk.KindDialer, p.Info.Name)
		if ds.Skip != "" {
			return d, fmt.Sprintf("its QUIC dialer %s is skipped: %s", p.Info.Name, ds.Skip)
		}
		cfg, err := p.Schema(sdk.KindDialer).Config(ds.Config)
		if err != nil {
			return d, fmt.Sprintf("its QUIC dialer %s does not take its configuration: %s", p.Info.Name, errText(err))
		}
		comp, err := p.New(sdk.KindDialer, cfg)
		if err != nil {
			return d, fmt.Sprintf("its QUIC dialer %s refused its configuration: %s", p.Info.Name, errText(err))
		}
		return engine.Stage[sdk.Dialer]{Name: p.Info.Name, Plugin: p.Info.Name, Component: comp.(sdk.Dialer)}, ""
	}
	return d, "the binary serves no QUIC dialer: a QUIC connection cannot leave the process that dialed it, so a handshake over QUIC is checked with a QUIC dialer of the same binary"
}

// noConnDialer checks a dialer that hands on no connection (sdk.ConnNone,
// an ICMP echo): its dial of 127.0.0.1 (the check's DNS server with
// server = "dns") is the whole probe, phases and no connection.
func (c *checker) noConnDialer(name string, d sdk.Dialer, set *Component) func() string {
	k := sdk.KindDialer
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	if set.Server == ServerDNS {
		addr = netip.MustParseAddrPort(c.env.dns.Addr)
	}
	main := func() string {
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		start := time.Now()
		resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: set.Host})
		if err != nil {
			return "returned an error instead of an answer: " + errText(err)
		}
		problems := phaseProblems(resp.Phases, resp.Failure, time.Since(start))
		if resp.Conn != nil || resp.Handle != nil {
			closeDial(resp)
			problems = append(problems, "handed on a connection, but the plugin declares none (dialer_conn = none)")
		}
		switch {
		case set.WantFailure != "":
			problems = append(problems, wantFailure(resp.Failure, set.WantFailure))
		case resp.Failure != nil:
			problems = append(problems, fmt.Sprintf("failed as %s: %s; want a probe of 127.0.0.1 that succeeds", resp.Failure.Class, oneLine(resp.Failure.Message)))
		}
		return strings.Join(problems, "; ")
	}
	c.add(name, k, "dial", main())
	why := "a dialer without a connection (dialer_conn = none) has no target on loopback that fails or stays silent: every loopback address answers; its own tests must cover its failures and deadline"
	if set.Server == ServerDNS {
		why = "the question a dialer of no connection asks the DNS server is its configuration, which the check does not vary; its own tests must cover its failures and deadline"
	}
	c.skip(name, k, "failure as data", why)
	c.skip(name, k, "deadline", why)
	return main
}

// closeDial closes what a dial handed back.
func closeDial(resp *sdk.DialResponse) {
	if resp.Conn != nil {
		_ = resp.Conn.Close()
	}
	if resp.Handle != nil && resp.Handle.Close != nil {
		_ = resp.Handle.Close()
	}
}

// quicDialer checks a dialer whose connection is QUIC (sdk.ConnQUIC): it
// completes a handshake with the check's HTTP/3 server, which sees the
// connection closed after the dial (the connection never leaves the
// plugin process: with no handshake of that process after it, the plugin
// closes it); it fails as data against a UDP port nothing reads, and ends
// by the deadline.
func (c *checker) quicDialer(name string, d sdk.Dialer, set *Component) func() string {
	k := sdk.KindDialer
	dial := func(ctx context.Context, addr netip.AddrPort) (*sdk.DialResponse, time.Duration, string) {
		start := time.Now()
		resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: set.Host})
		if err != nil {
			return nil, 0, "returned an error instead of an answer: " + errText(err)
		}
		return resp, time.Since(start), ""
	}
	main := func() string {
		srv, err := c.env.server(ServerHTTP3, answer)
		if err != nil {
			return errText(err)
		}
		base, accepts := srv.open(), srv.acceptCount()
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		resp, took, problem := dial(ctx, srv.addr)
		if problem != "" {
			return problem
		}
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		if resp.Conn != nil {
			problems = append(problems, "handed on a socket, but the plugin declares a QUIC connection (dialer_conn = quic)")
		}
		if resp.Handle != nil && resp.Handle.Kind != sdk.ConnQUIC {
			problems = append(problems, fmt.Sprintf("handed on a %s handle, want quic", resp.Handle.Kind))
		}
		closeDial(resp)
		switch {
		case set.WantFailure != "":
			return strings.Join(append(problems, wantFailure(resp.Failure, set.WantFailure)), "; ")
		case resp.Failure != nil:
			problems = append(problems, fmt.Sprintf("failed as %s: %s; want a QUIC connection to %s", resp.Failure.Class, oneLine(resp.Failure.Message), srv.addr))
		case !srv.waitAccepts(closeWithin, accepts+1):
			problems = append(problems, fmt.Sprintf("succeeded, but the HTTP/3 server at %s accepted no QUIC connection", srv.addr))
		default:
			if n := srv.waitOpen(closeWithin, base); n > base {
				problems = append(problems, fmt.Sprintf("the server saw no close %v after the dial: the plugin kept the QUIC connection", closeWithin))
			}
		}
		return strings.Join(problems, "; ")
	}
	c.add(name, k, "dial", main())

	// A closed UDP port: QUIC hears no answer, and fails as data.
	ctx, cancel := context.WithTimeout(c.ctx, deadlineTimeout)
	resp, took, problem := dial(ctx, c.env.refusedUDP)
	cancel()
	if problem == "" {
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		if resp.Failure == nil {
			closeDial(resp)
			problems = append(problems, fmt.Sprintf("connected to %s, where nothing listens; want a failure", c.env.refusedUDP))
		} else {
			problems = append(problems, failureProblem(resp.Failure))
		}
		problem = strings.Join(problems, "; ")
	}
	c.add(name, k, "failure as data", problem)

	// A UDP port held by a socket that never reads: the deadline ends it.
	silentAddr := c.env.silentUDP.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel = context.WithTimeout(c.ctx, deadlineTimeout)
	defer cancel()
	resp, took, problem = dial(ctx, silentAddr)
	if problem == "" {
		closeDial(resp)
		problem = deadlineProblem(resp.Failure, took, "connected to a UDP port that never answers")
	}
	c.add(name, k, "deadline", problem)
	return main
}

// udpDialer checks a dialer of UDP sockets (server = "udp" in the check
// file): it hands back a UDP socket connected to the check's UDP echo
// server, which echoes what it sends; connected to a closed UDP port, its
// socket reports the kernel's ICMP port unreachable (a connect of UDP
// sends nothing: the refusal comes to the first exchange); connected to a
// port that never answers, the dial and a read end by the deadline.
func (c *checker) udpDialer(name string, d sdk.Dialer, set *Component) func() string {
	k := sdk.KindDialer
	dial := func(ctx context.Context, addr netip.AddrPort) (*sdk.DialResponse, time.Duration, string) {
		start := time.Now()
		resp, err := d.Dial(ctx, &sdk.DialRequest{Address: addr, Host: set.Host})
		if err != nil {
			return nil, 0, "returned an error instead of an answer: " + errText(err)
		}
		return resp, time.Since(start), ""
	}
	// exchange dials addr and sends a datagram over the socket; it
	// returns the dial's problems and the error of the read of the reply.
	exchange := func(addr netip.AddrPort, timeout time.Duration) ([]string, error) {
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		resp, took, problem := dial(ctx, addr)
		if problem != "" {
			return []string{problem}, nil
		}
		defer closeDial(resp)
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		switch {
		case resp.Failure != nil:
			return append(problems, fmt.Sprintf("failed as %s: %s; want a socket connected to %s (a UDP connect sends nothing)", resp.Failure.Class, oneLine(resp.Failure.Message), addr)), nil
		case resp.Conn == nil:
			return append(problems, "answered neither a connection nor a failure"), nil
		}
		deadline, _ := ctx.Deadline()
		_ = resp.Conn.SetDeadline(deadline)
		if _, err := io.WriteString(resp.Conn, "probe plugins check\n"); err != nil {
			return problems, err
		}
		_, err := resp.Conn.Read(make([]byte, 64))
		return problems, err
	}
	main := func() string {
		srv, err := c.env.server(ServerUDP, answer)
		if err != nil {
			return errText(err)
		}
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		resp, took, problem := dial(ctx, srv.addr)
		if problem != "" {
			return problem
		}
		problems := phaseProblems(resp.Phases, resp.Failure, took)
		defer closeDial(resp)
		switch {
		case set.WantFailure != "":
			problems = append(problems, wantFailure(resp.Failure, set.WantFailure))
		case resp.Failure != nil:
			problems = append(problems, fmt.Sprintf("failed as %s: %s; want a UDP socket connected to %s", resp.Failure.Class, oneLine(resp.Failure.Message), srv.addr))
		case resp.Conn == nil:
			problems = append(problems, "answered neither a connection nor a failure")
		default:
			if _, ok := resp.Conn.(*net.UDPConn); !ok {
				problems = append(problems, fmt.Sprintf("the connection is a %T, not a UDP socket", resp.Conn))
			} else {
				problems = append(problems, echoes(resp.Conn, srv.addr, ""))
			}
		}
		return strings.Join(problems, "; ")
	}
	c.add(name, k, "dial", main())

	// A closed UDP port: the kernel's port unreachable comes to the
	// connected socket as a refusal.
	problems, err := exchange(c.env.refusedUDP, callTimeout)
	switch {
	case len(problems) > 0 && err == nil:
		// the dial's problems say it
	case err == nil:
		problems = append(problems, fmt.Sprintf("a reply came from %s, where nothing listens", c.env.refusedUDP))
	case !errors.Is(err, syscall.ECONNREFUSED):
		problems = append(problems, fmt.Sprintf("the socket's read ended in %s; want the refusal (ECONNREFUSED) of a connected socket, which the kernel's port unreachable from %s gives", errText(err), c.env.refusedUDP))
	}
	c.add(name, k, "failure as data", strings.Join(problems, "; "))

	// A UDP port held by a socket that never reads: dial and read end by
	// the deadline.
	silentAddr := c.env.silentUDP.LocalAddr().(*net.UDPAddr).AddrPort()
	start := time.Now()
	problems, err = exchange(silentAddr, deadlineTimeout)
	took := time.Since(start)
	var ne net.Error
	switch {
	case len(problems) > 0 && err == nil:
	case err == nil:
		problems = append(problems, fmt.Sprintf("a reply came from %s, which never answers", silentAddr))
	case !errors.As(err, &ne) || !ne.Timeout():
		problems = append(problems, fmt.Sprintf("the socket's read ended in %s; want the deadline's timeout", errText(err)))
	case took > deadlineTimeout+closeWithin:
		problems = append(problems, fmt.Sprintf("took %v, after the call's %v deadline", took.Round(time.Millisecond), deadlineTimeout))
	}
	c.add(name, k, "deadline", strings.Join(problems, "; "))
	return main
}

package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// round runs one round of t's pipeline, numbered seq, and appends its
// attempts to out: one attempt, or under AddressAll one per resolved
// address. Every attempt has its own deadline; the connection each opens is
// closed before round returns, after its Total is taken.
func (e *Engine) round(ctx context.Context, t *Target, seq int, out []Attempt) []Attempt {
	timeout := e.timeout(t)
	r := attemptRun{Attempt: Attempt{Target: t.Name, Seq: seq, Started: time.Now()}}
	r.t0 = r.Started
	actx, cancel := context.WithDeadline(ctx, r.t0.Add(timeout))
	defer cancel()
	if r.sequence(actx, t, e.opts.Keep != nil) {
		return append(out, r.finish(t, nil, e.opts.Keep))
	}
	addrs := r.resolve(actx, t)
	policy := t.Pipeline.AddressPolicy
	if policy == AddressAll || policy == AddressHappyEyeballs {
		addrs = r.limit(addrs)
	}
	if len(addrs) == 0 || policy != AddressAll {
		return append(out, r.finish(t, r.connect(actx, t, addrs, e.opts.Keep != nil), e.opts.Keep))
	}

	// Each address's attempt reuses the resolution: its own phases are placed
	// as if they had followed it at once, and its deadline runs from there.
	resolved, shared := time.Since(r.t0), sharedResolution(r.Phases, netip.AddrPortFrom(addrs[0], t.Port))
	for i := range addrs {
		row := attemptRun{Attempt: r.Attempt, t0: r.t0}
		if i > 0 {
			row.t0 = time.Now().Add(-resolved)
			row.Started = row.t0
			row.Phases = slices.Clone(shared)
		}
		rctx, cancel := context.WithDeadline(ctx, row.t0.Add(timeout))
		out = append(out, row.finish(t, row.connect(rctx, t, addrs[i:i+1], e.opts.Keep != nil), e.opts.Keep))
		cancel()
	}
	return out
}

// MaxAddresses is the most addresses of one resolution a round takes under
// AddressAll and AddressHappyEyeballs: the first ones, in the resolver's
// order. One DNS reply can hold thousands; a round probes each address it
// takes, and a report lists each of its attempts.
const MaxAddresses = 64

// limit returns the first MaxAddresses of addrs. When there are more, it
// says so in the attributes of the resolution's first phase:
// addresses_total, how many the resolver returned, and addresses_probed.
func (r *attemptRun) limit(addrs []netip.Addr) []netip.Addr {
	if len(addrs) <= MaxAddresses {
		return addrs
	}
	p := &r.Phases[0] // a resolution with addresses has a phase (record)
	p.Attrs = maps.Clone(p.Attrs)
	if p.Attrs == nil {
		p.Attrs = map[string]any{}
	}
	p.Attrs["addresses_total"], p.Attrs["addresses_probed"] = len(addrs), MaxAddresses
	return addrs[:MaxAddresses]
}

// sharedResolution returns the phases of a round's resolution as the
// attempts at its later addresses carry them under AddressAll: the same
// measurements, their attributes replaced by "shared_with", the address of
// the round's first attempt, which has them. A reply's addresses are thus
// written once a round, not once an address.
func sharedResolution(phases []Phase, first netip.AddrPort) []Phase {
	out := slices.Clone(phases)
	attrs := map[string]any{"shared_with": first.String()}
	for i := range out {
		out[i].Attrs = attrs
	}
	return out
}

// timeout returns the deadline of each of t's attempts.
func (e *Engine) timeout(t *Target) time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return e.opts.Timeout
}

// attemptRun is an attempt under construction.
type attemptRun struct {
	Attempt
	t0 time.Time
	// handle is the connection of a dialer that hands on no socket (QUIC),
	// closed by finish.
	handle *sdk.Handle
}

// finish completes the attempt: it takes its Total, then offers conn, if
// any, to keep when the attempt succeeded, and closes it unless keep took
// it.
func (r *attemptRun) finish(t *Target, conn net.Conn, keep func(*Target, *Attempt, net.Conn) bool) Attempt {
	r.Total = time.Since(r.t0)
	var sum time.Duration
	for _, p := range r.Phases {
		sum += p.Duration
	}
	r.Overhead = max(r.Total-sum, 0)
	r.OK = r.Failure == nil
	if r.handle != nil { // never kept: Keep takes sockets
		_ = r.handle.Close()
		r.handle = nil
	}
	if conn != nil && !(r.OK && keep != nil && keep(t, &r.Attempt, conn)) {
		// Closing is not part of the probe: a TLS close_notify must not
		// hang on a peer that stopped reading.
		_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_ = conn.Close()
	}
	return r.Attempt
}

// resolve runs the resolver whose match fits t's host and returns the
// addresses, or nil when the resolution failed.
func (r *attemptRun) resolve(ctx context.Context, t *Target) []netip.Addr {
	p := t.Pipeline
	if err := CheckHost(t.Host); err != nil {
		r.fail(sdk.PhaseResolve, sdk.ClassPluginError, fmt.Sprintf("target %q: %v", t.Name, err))
		return nil
	}
	route := p.Route(t.Host)
	if route == nil {
		r.fail(sdk.PhaseResolve, sdk.ClassPluginError, fmt.Sprintf("no resolver of pipeline %q matches host %q", p.Name, t.Host))
		return nil
	}
	res, ok := call(r, ctx, sdk.PhaseResolve, route.Stage, resolveOutcome, func(ctx context.Context) (*sdk.ResolveResponse, error) {
		return route.Component.Resolve(ctx, &sdk.ResolveRequest{Host: t.Host, Port: t.Port})
	})
	if !ok {
		return nil
	}
	return r.addresses(route, t, res)
}

// addresses returns the addresses of a resolution that succeeded, and
// fails the attempt when it found none.
func (r *attemptRun) addresses(route *Route, t *Target, res *sdk.ResolveResponse) []netip.Addr {
	if len(res.Addresses) == 0 {
		r.fail(sdk.PhaseResolve, sdk.ClassDNSNoAnswer, fmt.Sprintf("resolver %q returned no address for %q", route.Name, t.Host))
		return nil
	}
	return res.Addresses
}

// sequence runs the attempt in one call when its resolver can run the
// whole pipeline (Sequencer: a plugin process serving every component)
// and the pipeline allows: it dials the first address, and nothing keeps
// the connection. It reports whether it ran the attempt; if not, the
// components are called one by one.
func (r *attemptRun) sequence(ctx context.Context, t *Target, keeping bool) bool {
	p := t.Pipeline
	if keeping || p.AddressPolicy == AddressAll || p.AddressPolicy == AddressHappyEyeballs {
		return false
	}
	route := p.Route(t.Host)
	if route == nil {
		return false
	}
	s, ok := route.Component.(Sequencer)
	if !ok {
		return false
	}
	hs := make([]sdk.Handshaker, len(p.Handshakes))
	for i, h := range p.Handshakes {
		hs[i] = h.Component
	}
	callAt := time.Now()
	handled := false
	resp, err := protect(ctx, func(ctx context.Context) (*SequenceResponse, error) {
		resp, ok, err := s.Sequence(ctx, &SequenceRequest{Host: t.Host, Port: t.Port, Dialer: p.Dialer.Component, Handshakers: hs})
		handled = ok
		return resp, err
	})
	switch {
	case err == nil && !handled:
		return false
	case err == nil && (resp == nil || resp.Resolve == nil):
		err = fmt.Errorf("the sequence returned no resolution")
	}
	if err != nil {
		record(r, sdk.PhaseResolve, route.Stage, callAt, outcome{}, err)
		return true
	}
	if !record(r, sdk.PhaseResolve, route.Stage, callAt, resolveOutcome(resp.Resolve), nil) {
		return true
	}
	addrs := r.addresses(route, t, resp.Resolve)
	if addrs == nil {
		return true
	}
	r.Address = netip.AddrPortFrom(addrs[0], t.Port)
	if !record(r, sdk.PhaseConnect, p.Dialer, callAt, dialOutcome(resp.Dial), nil) {
		return true
	}
	for i, h := range p.Handshakes {
		var hr *sdk.HandshakeResponse
		if i < len(resp.Handshakes) {
			hr = resp.Handshakes[i]
		}
		if !record(r, h.Name, h, callAt, handshakeOutcome(hr), nil) {
			return true
		}
	}
	return true
}

// connect dials addrs[0], or races addrs under AddressHappyEyeballs, runs the
// handshakes over the connection, and returns it. With no addrs (a failed
// resolution) it does nothing. keeping says whether the connection may be
// kept after the attempt (Options.Keep).
func (r *attemptRun) connect(ctx context.Context, t *Target, addrs []netip.Addr, keeping bool) net.Conn {
	if len(addrs) == 0 {
		return nil
	}
	p := t.Pipeline
	var next sdk.Handshaker
	if len(p.Handshakes) > 0 {
		next = p.Handshakes[0].Component
	}
	var conn net.Conn
	if p.AddressPolicy == AddressHappyEyeballs {
		conn = r.race(ctx, t, addrs, next)
	} else {
		r.Address = netip.AddrPortFrom(addrs[0], t.Port)
		if dial, ok := call(r, ctx, sdk.PhaseConnect, p.Dialer, dialOutcome, func(ctx context.Context) (*sdk.DialResponse, error) {
			return dialBefore(ctx, p.Dialer.Component, &sdk.DialRequest{Address: r.Address, Host: t.Host}, next)
		}); ok {
			conn, r.handle = dial.Conn, dial.Handle
		}
	}
	if conn == nil && r.handle == nil {
		return nil
	}
	for i, h := range p.Handshakes {
		// After the last handshake the connection is only closed, unless
		// keep may take it.
		last := i == len(p.Handshakes)-1 && !keeping
		hs, ok := call(r, ctx, h.Name, h, handshakeOutcome, func(ctx context.Context) (*sdk.HandshakeResponse, error) {
			return handshakeLast(ctx, h.Component, &sdk.HandshakeRequest{Conn: conn, Handle: r.handle, Host: t.Host, Address: r.Address}, last)
		})
		if hs != nil && hs.Conn != nil {
			conn = hs.Conn
		}
		if !ok {
			break
		}
	}
	return conn
}

// dialed is the outcome of one connection attempt of a race.
type dialed struct {
	addr       netip.AddrPort
	resp       *sdk.DialResponse
	err        error         // a Go error or panic from the dialer
	start, end time.Duration // from the attempt's start
}

// failure returns why the connection attempt failed, nil when it connected.
func (d *dialed) failure(plugin, name string) *sdk.Failure {
	switch {
	case d.err != nil:
		class := sdk.ClassPluginError
		if _, crashed := d.err.(*panicError); crashed {
			class = sdk.ClassPluginCrashed
		}
		return &sdk.Failure{Phase: sdk.PhaseConnect, Class: class, Message: fmt.Sprintf("%s %q: %v", plugin, name, d.err)}
	case d.resp != nil && d.resp.Failure != nil:
		return d.resp.Failure
	case d.resp == nil || d.resp.Conn == nil:
		return &sdk.Failure{Phase: sdk.PhaseConnect, Class: sdk.ClassPluginError,
			Message: fmt.Sprintf("%s %q: dial returned neither a connection nor a failure", plugin, name)}
	}
	return nil
}

// race connects to addrs as Happy Eyeballs does (RFC 8305 §4-5) and returns
// the winner's connection, nil when every attempt failed. It records one
// connect phase from the first attempt's start to the winner's connection
// (or the last failure), with the winner's attrs (or the first attempt's)
// and "happy_eyeballs", a list of every attempt: address, start_ms from the
// phase's start, duration_ms, and outcome ("won", "lost" when it connected
// after the winner and was closed, "canceled", or its failure class).
func (r *attemptRun) race(ctx context.Context, t *Target, addrs []netip.Addr, next sdk.Handshaker) net.Conn {
	st := t.Pipeline.Dialer
	order := interleave(addrs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan int, len(order))
	attempts := make([]dialed, 0, len(order))
	start := func() {
		i := len(attempts)
		attempts = append(attempts, dialed{addr: netip.AddrPortFrom(order[i], t.Port), start: time.Since(r.t0)})
		d := &attempts[i]
		go func() {
			d.resp, d.err = protect(ctx, func(ctx context.Context) (*sdk.DialResponse, error) {
				return dialBefore(ctx, st.Component, &sdk.DialRequest{Address: d.addr, Host: t.Host}, next)
			})
			d.end = time.Since(r.t0)
			results <- i
		}()
	}
	start()
	delay := time.NewTimer(ConnectionAttemptDelay)
	defer delay.Stop()
	winner, outcomes := -1, make([]string, len(order))
	for running := 1; running > 0; {
		next := false
		select {
		case i := <-results:
			running--
			d := &attempts[i]
			f := d.failure(st.Plugin, st.Name)
			switch {
			case f == nil && winner < 0:
				winner, outcomes[i] = i, "won"
				cancel()
			case f == nil:
				outcomes[i] = "lost"
				_ = d.resp.Conn.Close()
			default:
				outcomes[i] = string(f.Class)
				next = winner < 0 && running == 0
			}
		case <-delay.C:
			next = winner < 0
		}
		if next && len(attempts) < len(order) && ctx.Err() == nil {
			start()
			running++
			delay.Reset(ConnectionAttemptDelay)
		}
	}

	first, last := attempts[0].start, attempts[0].end
	list := make([]any, len(attempts))
	for i, d := range attempts {
		last = max(last, d.end)
		list[i] = map[string]any{"address": d.addr.String(), "start_ms": sdk.Milliseconds(d.start - first),
			"duration_ms": sdk.Milliseconds(d.end - d.start), "outcome": outcomes[i]}
	}
	ph := Phase{Name: newPhaseNames(r.Phases).unique(sdk.PhaseConnect), Plugin: st.Plugin, Start: first, Duration: last - first}
	lead := &attempts[0]
	if winner >= 0 {
		lead = &attempts[winner]
		ph.OK, ph.Duration = true, lead.end-first
	}
	r.Address = lead.addr
	ph.Attrs = map[string]any{}
	if lead.resp != nil && len(lead.resp.Phases) > 0 {
		maps.Copy(ph.Attrs, jsonSafe(lead.resp.Phases[0].Attrs))
	}
	ph.Attrs["happy_eyeballs"] = list
	r.Phases = append(r.Phases, ph)
	if winner >= 0 {
		return lead.resp.Conn
	}
	f := *lead.failure(st.Plugin, st.Name)
	if len(attempts) > 1 {
		msgs := make([]string, len(attempts))
		for i := range attempts {
			msgs[i] = attempts[i].addr.String() + ": " + attempts[i].failure(st.Plugin, st.Name).Message
		}
		f.Message = strings.Join(msgs, "; ")
	}
	f.Phase = ph.Name
	r.Failure = &f
	return nil
}

// interleave orders addrs for Happy Eyeballs: IPv6 and IPv4 alternating,
// IPv6 first, each family in the resolver's order (RFC 8305 §4).
func interleave(addrs []netip.Addr) []netip.Addr {
	var v6, v4 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for i := 0; len(out) < len(addrs); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	return out
}

// outcome is what the engine records of a component's answer: the phases
// it measured and its failure, if any. A nil answer has none.
type outcome struct {
	phases  []sdk.Phase
	failure *sdk.Failure
}

// The outcome of each kind of component's answer.
func resolveOutcome(r *sdk.ResolveResponse) outcome {
	if r == nil {
		return outcome{}
	}
	return outcome{r.Phases, r.Failure}
}

func dialOutcome(r *sdk.DialResponse) outcome {
	if r == nil {
		return outcome{}
	}
	return outcome{r.Phases, r.Failure}
}

func handshakeOutcome(r *sdk.HandshakeResponse) outcome {
	if r == nil {
		return outcome{}
	}
	return outcome{r.Phases, r.Failure}
}

// protect runs fn(ctx), turning a panic into a *panicError.
func protect[R any](ctx context.Context, fn func(context.Context) (R, error)) (resp R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v}
		}
	}()
	return fn(ctx)
}

// call runs one component, records the outcome of its answer (its
// phases rebased onto the attempt's start), and reports whether the
// pipeline may go on. A Go error or a panic from the component fails the
// attempt as plugin.error or plugin.crashed in phase, with the time the
// call took.
func call[R, C any](r *attemptRun, ctx context.Context, phase string, st Stage[C], outcomeOf func(R) outcome, fn func(context.Context) (R, error)) (resp R, ok bool) {
	callAt := time.Now()
	resp, err := protect(ctx, fn)
	return resp, record(r, phase, st, callAt, outcomeOf(resp), err)
}

// record records out, the outcome of a component called at callAt, or
// err, its Go error or panic, as call does, and reports whether the
// pipeline may go on. The phases are held to the rules of phases.go: one
// with a negative start or duration fails the attempt as plugin.error, a
// name the attempt has already takes a suffix, and attributes are made
// JSON-safe.
func record[C any](r *attemptRun, phase string, st Stage[C], callAt time.Time, out outcome, err error) bool {
	offset := callAt.Sub(r.t0)
	phases, failure := out.phases, out.failure
	if err == nil {
		if len(phases) == 0 && failure == nil {
			err = errors.New("plugin returned neither phases, a failure nor an error")
		} else {
			err = checkPhases(phases)
		}
	}
	if err != nil {
		class := sdk.ClassPluginError
		if _, crashed := err.(*panicError); crashed {
			class = sdk.ClassPluginCrashed
		}
		name := newPhaseNames(r.Phases).unique(phase)
		r.Phases = append(r.Phases, Phase{Name: name, Plugin: st.Plugin, Start: offset,
			Duration: time.Since(callAt), Attrs: map[string]any{}})
		r.fail(name, class, fmt.Sprintf("%s %q: %v", st.Plugin, st.Name, err))
		return false
	}
	names := newPhaseNames(r.Phases)
	// The names as the component gave them, to those recorded: its failure
	// names the last phase of its name.
	renamed := make(map[string]string, len(phases))
	for _, p := range phases {
		name := cmp.Or(p.Name, phase) // a component may leave its phase to be named after its block
		renamed[name] = names.unique(name)
		r.Phases = append(r.Phases, Phase{Name: renamed[name], Plugin: st.Plugin, Start: offset + p.Start,
			Duration: p.Duration, OK: p.OK, Attrs: jsonSafe(p.Attrs)})
	}
	if failure != nil {
		f := *failure // the component's value may be shared
		f.Phase = cmp.Or(f.Phase, phase)
		if name, ok := renamed[f.Phase]; ok {
			f.Phase = name
		}
		r.Failure = &f
		return false
	}
	return true
}

func (r *attemptRun) fail(phase string, class sdk.Class, msg string) {
	r.Failure = &sdk.Failure{Phase: phase, Class: class, Message: msg}
}

// panicError is a panic recovered from a component.
type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

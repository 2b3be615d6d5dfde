package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// attempt runs one attempt of t's pipeline under its own deadline. The
// connection it opens is closed before it returns, after Total is taken.
func (e *Engine) attempt(ctx context.Context, t *Target, seq int) Attempt {
	timeout := e.opts.Timeout
	if t.Timeout > 0 {
		timeout = t.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r := attemptRun{Attempt: Attempt{Target: t.Name, Seq: seq, Started: time.Now()}}
	r.t0 = r.Started
	conn := r.pipeline(ctx, t)
	r.Total = time.Since(r.t0)
	if conn != nil {
		// Closing is not part of the probe: a TLS close_notify must not
		// hang on a peer that stopped reading.
		_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_ = conn.Close()
	}
	var sum time.Duration
	for _, p := range r.Phases {
		sum += p.Duration
	}
	r.Overhead = max(r.Total-sum, 0)
	r.OK = r.Failure == nil
	return r.Attempt
}

// attemptRun is an attempt under construction.
type attemptRun struct {
	Attempt
	t0 time.Time
}

// pipeline runs the stages in order and returns the open connection, if any.
func (r *attemptRun) pipeline(ctx context.Context, t *Target) net.Conn {
	p := t.Pipeline
	route := p.Route(t.Host)
	if route == nil {
		r.fail(sdk.PhaseResolve, sdk.ClassPluginError, fmt.Sprintf("no resolver of pipeline %q matches host %q", p.Name, t.Host))
		return nil
	}
	res, ok := call(r, ctx, sdk.PhaseResolve, route.Stage, func(ctx context.Context) (*sdk.ResolveResponse, error) {
		return route.Component.Resolve(ctx, &sdk.ResolveRequest{Host: t.Host, Port: t.Port})
	})
	if !ok {
		return nil
	}
	if len(res.Addresses) == 0 {
		r.fail(sdk.PhaseResolve, sdk.ClassDNSNoAnswer, fmt.Sprintf("resolver %q returned no address for %q", route.Name, t.Host))
		return nil
	}
	r.Address = netip.AddrPortFrom(res.Addresses[0], t.Port)

	dial, ok := call(r, ctx, sdk.PhaseConnect, p.Dialer, func(ctx context.Context) (*sdk.DialResponse, error) {
		return p.Dialer.Component.Dial(ctx, &sdk.DialRequest{Address: r.Address, Host: t.Host})
	})
	if !ok {
		return nil
	}
	conn := dial.Conn
	for _, h := range p.Handshakes {
		hs, ok := call(r, ctx, h.Name, h, func(ctx context.Context) (*sdk.HandshakeResponse, error) {
			return h.Component.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: t.Host, Address: r.Address})
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

// response is what every component returns: phases and maybe a failure.
type response interface {
	*sdk.ResolveResponse | *sdk.DialResponse | *sdk.HandshakeResponse
}

// call runs one component, records its phases rebased onto the attempt's
// start, and reports whether the pipeline may go on. A Go error or a panic
// from the component fails the attempt as plugin.error or plugin.crashed in
// phase, with the time the call took.
func call[R response, C any](r *attemptRun, ctx context.Context, phase string, st Stage[C], fn func(context.Context) (R, error)) (resp R, ok bool) {
	callAt := time.Now()
	offset := callAt.Sub(r.t0)
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = &panicError{v}
			}
		}()
		resp, err = fn(ctx)
	}()
	var phases []sdk.Phase
	var failure *sdk.Failure
	if err == nil {
		switch v := any(resp).(type) {
		case *sdk.ResolveResponse:
			if v != nil {
				phases, failure = v.Phases, v.Failure
			}
		case *sdk.DialResponse:
			if v != nil {
				phases, failure = v.Phases, v.Failure
			}
		case *sdk.HandshakeResponse:
			if v != nil {
				phases, failure = v.Phases, v.Failure
			}
		}
		if phases == nil && failure == nil {
			err = fmt.Errorf("plugin returned neither phases, a failure nor an error")
		}
	}
	if err != nil {
		class := sdk.ClassPluginError
		if _, crashed := err.(*panicError); crashed {
			class = sdk.ClassPluginCrashed
		}
		r.Phases = append(r.Phases, Phase{Name: phase, Plugin: st.Plugin, Start: offset,
			Duration: time.Since(callAt), Attrs: map[string]any{}})
		r.fail(phase, class, fmt.Sprintf("%s %q: %v", st.Plugin, st.Name, err))
		return resp, false
	}
	for _, p := range phases {
		if p.Name == "" { // a component that left its phase to be named after its block
			p.Name = phase
		}
		r.Phases = append(r.Phases, Phase{Name: p.Name, Plugin: st.Plugin, Start: offset + p.Start,
			Duration: p.Duration, OK: p.OK, Attrs: p.Attrs})
	}
	if failure != nil {
		if failure.Phase == "" {
			failure.Phase = phase
		}
		r.Failure = failure
		return resp, false
	}
	return resp, true
}

func (r *attemptRun) fail(phase string, class sdk.Class, msg string) {
	r.Failure = &sdk.Failure{Phase: phase, Class: class, Message: msg}
}

// panicError is a panic recovered from a component.
type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

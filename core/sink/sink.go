// Package sink is the one seam between the engine and what consumes its
// runs (DESIGN §11): an engine hands every finished attempt to OnAttempt,
// and a Stream attached there fans each out to its sinks, then closes them
// with the run's result. The report renderers, the exporter's metrics and
// whatever comes next (a status page, OpenTelemetry export) are sinks; the
// engine knows none of them, and none reaches into the engine.
//
// What a sink sees is redacted once, by the engine, before any sink sees it:
// the attempts (their target name, failure message and attributes) and the
// result (its targets' names and hosts too; see engine.Options.Secrets). A
// sink prints what it is given and redacts nothing itself.
//
// A sink cannot distort a measurement: the engine calls OnAttempt once the
// attempt's timing is done (its Total taken, its connection closed), on the
// goroutine that ran it, before that target's next attempt starts. A sink
// that may be slow (a network export) must therefore take the attempt and
// return, doing its slow work elsewhere, or it delays the next attempts of
// the run (never their timings).
package sink

import (
	"errors"
	"sync"

	"github.com/probe-dev/probe/core/engine"
)

// Sink consumes a stream of finished attempts.
type Sink interface {
	// Attempt consumes one finished attempt. A stream calls it one attempt
	// at a time, in the order the attempts finished; the attempts of one
	// target come in their order. a is the sink's to read during the call
	// only: a sink that keeps it keeps a copy. The attrs maps of its phases
	// and their values are not changed once the attempt has finished, by
	// anyone: a copy may keep them as they are. An error stops the stream
	// feeding this sink; Close returns it.
	Attempt(a *engine.Attempt) error
	// Flush writes out what the sink holds: a stream calls it at the end
	// of each run of a schedule, and before Close.
	Flush() error
	// Close ends the stream: res is the result of the run the stream
	// carried, with its attempts unless the run discarded them
	// (engine.Options.DiscardAttempts) and its targets' results unless it
	// discarded those (engine.Options.DiscardTargets), or nil for a stream
	// that carried the runs of a schedule, one after another. A sink that
	// renders a whole run (a table) writes it here; one that renders it
	// target by target (a TargetSink: the JSON document) ends it here.
	Close(res *engine.Result) error
}

// TargetSink is a Sink that also takes each target's result as the target
// is done: a sink that renders a run target by target (the JSON document)
// writes each as it comes rather than holding the whole run to its end.
type TargetSink interface {
	Sink
	// Target consumes the result of the run's i-th target (from 0) once
	// Attempt had its last attempt (engine.Engine.OnTarget), in the order
	// the targets finish. Calls may overlap each other and the Attempt
	// calls of other targets, never Close; tr is the sink's to keep. An
	// error stops the stream feeding this sink; Close returns it.
	Target(i int, tr *engine.TargetResult) error
}

// Stream fans the attempts of an engine's runs out to sinks. It is safe for
// concurrent use.
type Stream struct {
	mu    sync.Mutex
	sinks []Sink
	errs  []error // errs[i] is the first error of sinks[i]
}

// Attach returns a stream of e's finished attempts to sinks, registered as
// e's OnAttempt (replacing whatever was), and of its finished targets to
// those that are TargetSinks, as its OnTarget (none when none is: the
// engine then aggregates no target's result that no one reads).
func Attach(e *engine.Engine, sinks ...Sink) *Stream {
	s := &Stream{sinks: sinks, errs: make([]error, len(sinks))}
	e.OnAttempt(s.attempt)
	e.OnTarget(nil)
	for _, k := range sinks {
		if _, ok := k.(TargetSink); ok {
			e.OnTarget(s.target)
			break
		}
	}
	return s
}

// target hands tr to every TargetSink that has not failed, outside the
// stream's lock: a sink may take its time over a target (encode it) while
// the others' attempts stream on.
func (s *Stream) target(i int, tr *engine.TargetResult) {
	for k, sk := range s.sinks {
		ts, ok := sk.(TargetSink)
		if !ok {
			continue
		}
		s.mu.Lock()
		failed := s.errs[k] != nil
		s.mu.Unlock()
		if failed {
			continue
		}
		if err := ts.Target(i, tr); err != nil {
			s.mu.Lock()
			if s.errs[k] == nil {
				s.errs[k] = err
			}
			s.mu.Unlock()
		}
	}
}

// attempt hands a to every sink that has not failed.
func (s *Stream) attempt(a engine.Attempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.sinks {
		if s.errs[i] == nil {
			s.errs[i] = k.Attempt(&a)
		}
	}
}

// Flush flushes every sink that has not failed; it returns their errors.
func (s *Stream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i, k := range s.sinks {
		if s.errs[i] == nil {
			s.errs[i] = k.Flush()
			errs = append(errs, s.errs[i])
		}
	}
	return errors.Join(errs...)
}

// Close flushes and closes every sink with res, also those that failed,
// and returns every sink's first error.
func (s *Stream) Close(res *engine.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.sinks {
		if s.errs[i] == nil {
			s.errs[i] = k.Flush()
		}
		if err := k.Close(res); s.errs[i] == nil {
			s.errs[i] = err
		}
	}
	return errors.Join(s.errs...)
}

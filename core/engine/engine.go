package engine

import (
	"context"
	"errors"
	"iter"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// Engine schedules attempts. It is safe for concurrent use.
type Engine struct {
	opts Options
	// concurrencySet is whether the caller set Options.Concurrency (or
	// Sequential mode): a hard bound of Schedule's then, a floor it goes
	// past while the processors keep up otherwise (scheduleConcurrency).
	concurrencySet bool
	redactor       *Redactor
	// mu serialises OnAttempt calls.
	mu        sync.Mutex
	onAttempt func(Attempt)
	onTarget  func(int, *TargetResult)
	// done and planned count rounds for Progress.
	done, planned atomic.Int64
}

// New returns an engine with opts; zero fields take their defaults.
func New(opts Options) *Engine {
	return &Engine{opts: opts.withDefaults(), concurrencySet: opts.Concurrency > 0 || opts.Mode == Sequential,
		redactor: NewRedactor(opts.Secrets)}
}

// Options returns the engine's options with defaults applied.
func (e *Engine) Options() Options { return e.opts }

// OnAttempt registers fn to be called with every attempt Run makes as it
// finishes, one call at a time, in completion order: the one seam of the
// attempts' stream (core/sink attaches its sinks here). The attempt is
// redacted already (Options.Secrets), and its timing done: fn runs on the
// goroutine that ran it, before the target's next attempt, and delays that
// attempt by as long as it takes, never a measurement.
func (e *Engine) OnAttempt(fn func(Attempt)) { e.onAttempt = fn }

// OnTarget registers fn to be called with each target's result as the
// target is done, after OnAttempt had its last attempt: i is the target's
// place among the run's targets (from 0), and the targets come in the
// order they finish. Calls may overlap, each on the goroutine that ran its
// target (or read it, for a target an interrupted run never probed). The
// result is redacted as the Result's targets are, and fn's to keep: under
// Options.DiscardTargets the run keeps nothing of it, so a consumer that
// renders a run target by target (the JSON document) holds only the
// targets not yet done, with Options.DiscardAttempts unset their attempts.
func (e *Engine) OnTarget(fn func(i int, tr *TargetResult)) { e.onTarget = fn }

// Redactor returns the redactor of the engine's secrets (Options.Secrets),
// which redacts every attempt and result before anyone sees them: for a
// consumer that shows what it has from elsewhere (a target of the file, a
// message), as the attempts show it. nil when there are no secrets.
func (e *Engine) Redactor() *Redactor { return e.redactor }

// Probe runs one attempt of t and returns it, all within t's timeout from
// the call: one deadline covers whatever the attempt takes. Under
// AddressAll, where a round makes one attempt per resolved address, it
// probes every address within that deadline and returns the first one's
// attempt (Run reports them all, each with a deadline of its own); an
// attempt starved of file descriptors is run again within it too.
func (e *Engine) Probe(ctx context.Context, t *Target) Attempt {
	ctx, cancel := context.WithTimeout(ctx, e.timeout(t))
	defer cancel()
	a := e.roundRetryingOnFDLimit(ctx, t, 1, nil)[0]
	e.redactor.attempt(&a)
	return a
}

// Run probes every target and aggregates the results. Targets are scheduled
// by the engine's mode and concurrency; the attempts of one target run in
// order. When ctx is canceled, Run stops starting attempts, drops the ones
// the cancellation interrupted, and returns what finished with Interrupted
// set; a target none of whose attempts finished is then counted as
// interrupted, neither ok nor failed.
//
// An attempt that fails because the process ran out of file descriptors
// (sdk.ClassFDLimit) says nothing of its target: Run and Probe run it again,
// with backoff, for up to the attempt's timeout, and report it as it ends
// then.
func (e *Engine) Run(ctx context.Context, targets []*Target) *Result {
	return e.RunSeq(ctx, slices.Values(targets), e.Rounds(targets))
}

// Rounds returns how many rounds targets plan, the sum of their attempts:
// what Progress counts, and what RunSeq wants to know of its targets.
func (e *Engine) Rounds(targets []*Target) int64 {
	var n int64
	for _, t := range targets {
		n += int64(e.attempts(t))
	}
	return n
}

// attempts returns how many attempts t gets.
func (e *Engine) attempts(t *Target) int {
	if t.Attempts > 0 {
		return t.Attempts
	}
	return e.opts.Attempts
}

// RunSeq is Run over the targets seq yields, taken one at a time as a
// worker is free to probe it: the engine holds the targets being probed,
// not the others, so seq may read them from a file as the run goes.
// rounds is how many rounds they plan (Rounds), for Progress. The Result's
// targets are in seq's order; under Options.DiscardTargets there are none,
// and a run holds nothing for a target once it is done but its counts in
// the Summary.
//
// When ctx is canceled, RunSeq reads the rest of seq, probing nothing, and
// counts those targets as interrupted.
func (e *Engine) RunSeq(ctx context.Context, seq iter.Seq[*Target], rounds int64) *Result {
	res := &Result{Started: time.Now()}
	sched := readSched()
	e.planned.Add(rounds)
	run := &runAggregate{g: newAggregate(e.boundedStats()), first: map[string]phaseKey{}}
	type job struct {
		i int
		t *Target
	}
	next := make(chan job)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards res.Targets
		workers int
		limit   = -1 // the most workers: workers(Concurrency), once a target is there
	)
	done := func(i int, tr *TargetResult) {
		run.target(ctx, i, tr)
		if e.onTarget != nil {
			e.onTarget(i, tr)
		}
		if !e.opts.DiscardTargets {
			mu.Lock()
			res.Targets[i] = tr
			mu.Unlock()
		}
	}
	i := 0
	for t := range seq {
		if !e.opts.DiscardTargets {
			mu.Lock()
			res.Targets = append(res.Targets, nil)
			mu.Unlock()
		}
		fed := false
		if ctx.Err() == nil {
			if limit < 0 {
				limit = e.workers(e.opts.Concurrency)
			}
			if workers < limit {
				workers++
				wg.Go(func() {
					for j := range next {
						done(j.i, e.runTarget(ctx, j.i, j.t, run))
					}
				})
			}
			select {
			case next <- job{i, t}:
				fed = true
			case <-ctx.Done():
			}
		}
		if !fed {
			done(i, &TargetResult{Target: e.redactor.Target(t), Stats: map[string]stats.Summary{}})
		}
		i++
	}
	close(next)
	wg.Wait()
	res.Duration = time.Since(res.Started)
	res.SchedLatency = schedSince(sched, run.time)
	res.Interrupted = ctx.Err() != nil
	res.Summary = run.summary
	res.Summary.Targets = i
	res.Phases, res.Stats = run.result()
	res.Summary.FailuresByClass = map[sdk.Class]int{}
	maps.Copy(res.Summary.FailuresByClass, run.g.failuresByClass)
	return res
}

// boundedStats reports whether the run's statistics estimate percentiles
// past stats.NewBounded's samples: when it keeps no attempt, unless told
// to keep them exact.
func (e *Engine) boundedStats() bool { return e.opts.DiscardAttempts && !e.opts.ExactStats }

// workers returns how many targets to run at once: n, and no more than the
// file descriptors left allow. RunSeq starts no more workers than it has
// targets.
func (e *Engine) workers(n int) int {
	if fit, limit, open, ok := fdConcurrency(); ok && fit < n {
		e.opts.Logger.Debug("concurrency capped by the file descriptor limit", "concurrency", n,
			"capped", fit, "nofile", limit, "open", open)
		n = fit
	}
	return n
}

// runTarget runs the attempts of t, the run's place-th target, Interval
// apart, and adds each finished one to run. It returns the target's result
// when there is a run or an OnTarget for it, and aggregates nothing
// otherwise (a schedule's, streaming its attempts only): nil.
func (e *Engine) runTarget(ctx context.Context, place int, t *Target, run *runAggregate) *TargetResult {
	rounds := e.attempts(t)
	var (
		g      *aggregate
		byAddr *addressAggregates
	)
	if run != nil || e.onTarget != nil {
		g = newAggregate(e.boundedStats())
		if t.Pipeline.AddressPolicy == AddressAll {
			byAddr = &addressAggregates{bounded: e.boundedStats()}
		}
	}
	// finished holds the target's finished attempts; under DiscardAttempts
	// only the last round's, whose slots the next round reuses.
	var finished []Attempt
	for seq := 1; seq <= rounds && ctx.Err() == nil; seq++ {
		if e.opts.DiscardAttempts {
			finished = finished[:0]
		}
		n := len(finished)
		finished = e.roundRetryingOnFDLimit(ctx, t, seq, finished)
		started := finished[n].Started
		kept := n
		for _, a := range finished[n:] {
			if ctx.Err() != nil && a.Failure != nil && errors.Is(ctx.Err(), context.Canceled) {
				continue // interrupted, not finished
			}
			a.Place = place
			e.redactor.attempt(&a)
			if log := e.opts.Logger; log.IsDebug() {
				args := []any{"target", a.Target, "seq", a.Seq, "address", a.Address, "ok", a.OK, "total", a.Total, "overhead", a.Overhead}
				if a.Failure != nil {
					args = append(args, "phase", a.Failure.Phase, "class", a.Failure.Class, "error", a.Failure.Message)
				}
				log.Debug("attempt finished", args...)
			}
			finished[kept] = a
			kept++
			g.add(&a)
			byAddr.add(&a)
			run.add(&a)
			if e.onAttempt != nil {
				e.mu.Lock()
				e.onAttempt(a)
				e.mu.Unlock()
			}
		}
		finished = finished[:kept]
		e.done.Add(1)
		if seq < rounds && e.opts.Interval > 0 {
			wait := time.NewTimer(e.opts.Interval - time.Since(started))
			select {
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
			}
		}
	}
	if g == nil {
		return nil
	}
	tr := &TargetResult{Target: e.redactor.Target(t)}
	if !e.opts.DiscardAttempts {
		tr.Attempts = finished
	}
	tr.ByAddress = byAddr.result()
	tr.Phases, tr.Stats = g.result()
	tr.FailuresByClass = g.failuresByClass
	total := tr.Stats[TotalPhase]
	tr.OK = total.Count > 0 && total.Failed == 0
	return tr
}

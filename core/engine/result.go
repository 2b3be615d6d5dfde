package engine

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// Phase is a measured phase of an attempt, as the engine reports it.
type Phase struct {
	Name   string
	Plugin string
	// Start is the offset from the attempt's start.
	Start    time.Duration
	Duration time.Duration
	OK       bool
	Attrs    map[string]any
}

// Attempt is the result of one run of a target's pipeline.
type Attempt struct {
	// Target is the name of the target.
	Target string
	// Seq numbers the target's attempts from 1.
	Seq int
	// Place is the target's place among the targets of the run that made
	// the attempt (from 0; the i of OnTarget): which target it is when two
	// share a name. 0 for Probe's.
	Place int
	// Address is the address dialed; invalid when resolution failed.
	Address netip.AddrPort
	// Started is the wall-clock time the attempt began.
	Started time.Time
	// Total is the attempt's duration from its start to the end of its last
	// phase.
	Total time.Duration
	// Overhead is the part of Total that no phase accounts for: the engine's
	// own orchestration between phases.
	Overhead time.Duration
	// Phases in the order they ran. Phases after a failed one are absent.
	Phases []Phase
	// OK is true when every phase succeeded.
	OK bool
	// Failure says why the attempt failed; nil when OK.
	Failure *sdk.Failure
}

// TotalPhase is the key of attempt totals in Stats maps.
const TotalPhase = "total"

// TargetResult is everything measured for one target.
type TargetResult struct {
	// Target is the target as outputs may show it: the one Run was given,
	// or, when its name or host holds a secret (Options.Secrets), a copy
	// with them redacted (Redactor.Target).
	Target *Target
	// Attempts in sequence order; none under Options.DiscardAttempts. An
	// attempt interrupted by cancellation is not recorded.
	Attempts []Attempt
	// OK is true when the target had attempts and all of them succeeded.
	OK bool
	// Interrupted is true when the run was canceled before any attempt of
	// the target finished: it is neither ok nor failed.
	Interrupted bool
	// Phases lists the phase names seen, in pipeline order, then TotalPhase.
	Phases []string
	// Stats per phase name and for TotalPhase.
	Stats map[string]stats.Summary
	// FailuresByClass counts failed attempts by failure class; nil when
	// none failed.
	FailuresByClass map[sdk.Class]int
	// ByAddress breaks the attempts down by the address they dialed, in the
	// order the addresses first appeared; set under AddressAll only. The
	// attempts that failed before they had an address (in resolve) are under
	// the invalid address.
	ByAddress []AddressResult
}

// AddressResult is what a target's attempts at one address measured.
type AddressResult struct {
	// Address is the address dialed; invalid for attempts that failed
	// before they had one.
	Address netip.AddrPort
	// OK is true when every attempt at the address succeeded.
	OK bool
	// Phases lists the phase names seen, in pipeline order, then TotalPhase.
	Phases []string
	// Stats per phase name and for TotalPhase.
	Stats map[string]stats.Summary
	// FailuresByClass counts failed attempts by failure class; nil when
	// none failed.
	FailuresByClass map[sdk.Class]int
}

// Result is a whole run.
type Result struct {
	Started  time.Time
	Duration time.Duration
	// Targets in the order Run was given them; nil under
	// Options.DiscardTargets.
	Targets []*TargetResult
	// Interrupted is true when the run was canceled before it finished.
	Interrupted bool
	// Phases and Stats aggregate every attempt of every target.
	Phases []string
	Stats  map[string]stats.Summary
	// Summary counts targets.
	Summary Summary
	// SchedLatency is how long the process's goroutines waited to run
	// during the run: time that is in the phases too.
	SchedLatency SchedLatency
}

// Summary counts the targets of a run by outcome: Targets = OK + Failed +
// Interrupted.
type Summary struct {
	Targets int
	OK      int
	Failed  int
	// Interrupted counts the targets none of whose attempts finished before
	// the run was canceled (TargetResult.Interrupted).
	Interrupted     int
	FailuresByClass map[sdk.Class]int
}

// aggregate accumulates attempts into per-phase statistics.
type aggregate struct {
	order []string
	accs  map[string]*stats.Accumulator
	// bounded: the accumulators are stats.NewBounded's, for a run that
	// keeps no attempt (Options.DiscardAttempts).
	bounded bool
	// failuresByClass counts the failed attempts by their failure's
	// class; nil until one fails.
	failuresByClass map[sdk.Class]int
}

func newAggregate(bounded bool) *aggregate {
	return &aggregate{accs: map[string]*stats.Accumulator{}, bounded: bounded}
}

func (g *aggregate) acc(name string) *stats.Accumulator {
	a, ok := g.accs[name]
	if !ok {
		a = &stats.Accumulator{}
		if g.bounded {
			a = stats.NewBounded()
		}
		g.accs[name] = a
		if name != TotalPhase {
			g.order = append(g.order, name)
		}
	}
	return a
}

// add adds a; a nil aggregate ignores it.
func (g *aggregate) add(a *Attempt) {
	if g == nil {
		return
	}
	for _, p := range a.Phases {
		g.acc(p.Name).Add(p.Duration, p.OK)
	}
	g.acc(TotalPhase).Add(a.Total, a.OK)
	if a.Failure != nil {
		if g.failuresByClass == nil {
			g.failuresByClass = map[sdk.Class]int{}
		}
		g.failuresByClass[a.Failure.Class]++
	}
}

func (g *aggregate) result() ([]string, map[string]stats.Summary) {
	out := make(map[string]stats.Summary, len(g.accs))
	for name, a := range g.accs {
		out[name] = a.Summary()
	}
	order := g.order
	if _, ok := g.accs[TotalPhase]; ok {
		order = append(order, TotalPhase)
	}
	return order, out
}

// runAggregate is the aggregate of a whole run, which every worker feeds as
// its target's attempts finish, and the count of its targets by outcome as
// each is done.
type runAggregate struct {
	mu sync.Mutex
	g  *aggregate
	// time is the sum of the attempts' totals.
	time time.Duration
	// first is, for each phase name, where it first appeared: the first
	// target (in the run's order) that has it, and its place there.
	first map[string]phaseKey
	// summary counts the targets done so far; its Targets and
	// FailuresByClass are left to the run.
	summary Summary
}

// phaseKey is where a phase name appears: the target's place in the run,
// the name's in the target's phases.
type phaseKey struct{ target, phase int }

func (k phaseKey) compare(o phaseKey) int {
	return cmp.Or(cmp.Compare(k.target, o.target), cmp.Compare(k.phase, o.phase))
}

// add adds a; a nil runAggregate (a schedule's) ignores it.
func (r *runAggregate) add(a *Attempt) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.g.add(a)
	r.time += a.Total
}

// target counts tr, the result of the run's i-th target, once it is done;
// it marks it interrupted when ctx ended before any of its attempts
// finished.
func (r *runAggregate) target(ctx context.Context, i int, tr *TargetResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case tr.OK:
		r.summary.OK++
	case ctx.Err() != nil && tr.Stats[TotalPhase].Count == 0:
		tr.Interrupted = true
		r.summary.Interrupted++
	default:
		r.summary.Failed++
	}
	for j, name := range tr.Phases {
		k := phaseKey{i, j}
		if f, ok := r.first[name]; name != TotalPhase && (!ok || k.compare(f) < 0) {
			r.first[name] = k
		}
	}
}

// result returns the run's phases and statistics once its targets are
// done. The phases are in the order they first appear in the run's
// targets, as if the targets had run one after another, not in the order
// the workers happened to finish them.
func (r *runAggregate) result() ([]string, map[string]stats.Summary) {
	r.g.order = slices.SortedFunc(maps.Keys(r.first), func(a, b string) int { return r.first[a].compare(r.first[b]) })
	return r.g.result()
}

// addressAggregates accumulates attempts per address; a nil one ignores
// them.
type addressAggregates struct {
	bounded bool // as aggregate's
	order   []netip.AddrPort
	aggs    map[netip.AddrPort]*aggregate
	bad     map[netip.AddrPort]bool // some attempt at the address failed
}

func (b *addressAggregates) add(a *Attempt) {
	if b == nil {
		return
	}
	g, ok := b.aggs[a.Address]
	if !ok {
		if b.aggs == nil {
			b.aggs, b.bad = map[netip.AddrPort]*aggregate{}, map[netip.AddrPort]bool{}
		}
		g = newAggregate(b.bounded)
		b.aggs[a.Address] = g
		b.order = append(b.order, a.Address)
	}
	g.add(a)
	b.bad[a.Address] = b.bad[a.Address] || !a.OK
}

func (b *addressAggregates) result() []AddressResult {
	if b == nil {
		return nil
	}
	out := make([]AddressResult, len(b.order))
	for i, addr := range b.order {
		g := b.aggs[addr]
		out[i] = AddressResult{Address: addr, OK: !b.bad[addr], FailuresByClass: g.failuresByClass}
		out[i].Phases, out[i].Stats = g.result()
	}
	return out
}

package engine

import (
	"net/netip"
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
	Targets  []*TargetResult
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
	// failuresByClass counts the failed attempts by their failure's
	// class; nil until one fails.
	failuresByClass map[sdk.Class]int
}

func newAggregate() *aggregate {
	return &aggregate{accs: map[string]*stats.Accumulator{}}
}

func (g *aggregate) acc(name string) *stats.Accumulator {
	a, ok := g.accs[name]
	if !ok {
		a = &stats.Accumulator{}
		g.accs[name] = a
		if name != TotalPhase {
			g.order = append(g.order, name)
		}
	}
	return a
}

func (g *aggregate) add(a *Attempt) {
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
// its target's attempts finish.
type runAggregate struct {
	mu sync.Mutex
	g  *aggregate
	// time is the sum of the attempts' totals.
	time time.Duration
}

func (r *runAggregate) add(a *Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.g.add(a)
	r.time += a.Total
}

// result returns the run's phases and statistics once targets, the run's
// target results, are complete. The phases are in the order they first
// appear in targets, as if the targets had run one after another, not in
// the order the workers happened to finish them.
func (r *runAggregate) result(targets []*TargetResult) ([]string, map[string]stats.Summary) {
	r.g.order = r.g.order[:0]
	seen := map[string]bool{TotalPhase: true}
	for _, tr := range targets {
		for _, name := range tr.Phases {
			if !seen[name] {
				seen[name] = true
				r.g.order = append(r.g.order, name)
			}
		}
	}
	return r.g.result()
}

// addressAggregates accumulates attempts per address; a nil one ignores
// them.
type addressAggregates struct {
	order []netip.AddrPort
	aggs  map[netip.AddrPort]*aggregate
	bad   map[netip.AddrPort]bool // some attempt at the address failed
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
		g = newAggregate()
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

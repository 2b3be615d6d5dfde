package history

import (
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// State is what a target's latest attempt says of it.
type State string

// The states of a target.
const (
	StateOK      State = "ok"
	StateFailing State = "failing"
	// StatePending is a target without an attempt yet.
	StatePending State = "pending"
)

// Target is a target's state.
type Target struct {
	Name  string
	State State
	// Since is when the state began: the start of the first attempt of the
	// run of ok ones, or of failed ones, that the latest ends. Zero when
	// pending.
	Since time.Time
	// Class is the latest attempt's failure class; "" when ok.
	Class string
	// Phase is the phase that failed; "" when ok.
	Phase string
	// Last is when the latest attempt started.
	Last time.Time
	// Total is the latest attempt's duration.
	Total time.Duration
	// CertNotAfter is when the leaf certificate last seen expires; zero
	// when no attempt reported one.
	CertNotAfter time.Time
	// Points is the number of attempts kept one by one.
	Points int
}

// Targets returns the state of every target, in the file's order.
func (h *History) Targets() []Target {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Target, 0, len(h.order))
	for _, name := range h.order {
		r := h.targets[name]
		t := Target{Name: name, State: StatePending, Points: len(r.started), CertNotAfter: r.notAfter}
		if a := r.latest; a != nil {
			t.State, t.Since, t.Last, t.Total = StateOK, r.since, a.Started, a.Total
			if !a.OK {
				t.State = StateFailing
				t.Class, t.Phase = "unknown", ""
				if a.Failure != nil {
					t.Class, t.Phase = string(a.Failure.Class), a.Failure.Phase
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// Series is a target's attempts in a time range, oldest first, as columns.
type Series struct {
	// Phases names the phases seen, in the order they first ran.
	Phases []string
	// Started is when each attempt started.
	Started []time.Time
	// Total is each attempt's duration.
	Total []time.Duration
	// Class is each attempt's failure class; "" when it was ok.
	Class []string
	// Durations[p][i] is the duration of Phases[p] in attempt i; negative
	// when that phase did not run.
	Durations [][]time.Duration
	// Buckets are the attempts of the range older than those kept one by
	// one (Options.Attempts); nil when there are none.
	Buckets *Buckets
}

// Series returns target's attempts that started in [from, to) and within
// the retention, and the buckets of the older ones that start in it; false
// for a target the history does not know.
func (h *History) Series(target string, from, to time.Time) (*Series, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.targets[target]
	if r == nil {
		return nil, false
	}
	if oldest := time.Now().Add(-h.retain); from.Before(oldest) {
		from = oldest
	}
	s := &Series{Phases: append([]string(nil), r.phases...), Durations: make([][]time.Duration, len(r.phases))}
	n, lo, hi := len(r.started), from.UnixMilli(), to.UnixMilli()
	for k := range n {
		i := (r.head + k) % n
		if ms := r.started[i]; ms < lo || ms >= hi {
			continue
		}
		s.Started = append(s.Started, time.UnixMilli(r.started[i]))
		s.Total = append(s.Total, time.Duration(r.total[i])*time.Microsecond)
		c := ""
		if r.class[i] > 0 {
			c = string(h.classes[r.class[i]-1])
		}
		s.Class = append(s.Class, c)
		for p := range r.phases {
			d := time.Duration(-1)
			if v := r.dur[p][i]; v != absent {
				d = time.Duration(v) * time.Microsecond
			}
			s.Durations[p] = append(s.Durations[p], d)
		}
	}
	if h.width > 0 {
		s.Buckets = h.bucketsIn(r, lo, hi)
	}
	return s, true
}

// Latest returns a copy of target's latest attempt; nil when it has none.
func (h *History) Latest(target string) *engine.Attempt {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r := h.targets[target]
	if r == nil || r.latest == nil {
		return nil
	}
	a := *r.latest
	return &a
}

// Retention returns how long the history keeps attempts.
func (h *History) Retention() time.Duration { return h.retain }

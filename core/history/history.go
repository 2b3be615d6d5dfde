// Package history keeps, in memory, the recent attempts of the targets that
// `probe serve` probes on a schedule: per target and phase a bounded ring of
// compact records (when the attempt started, each phase's duration, the
// total, whether it was ok and its failure class), plus the latest attempt
// whole, for its waterfall. A History is a sink (core/sink) fed by the
// schedule's stream; the status page (core/status) reads it.
//
// Every attempt of the last Options.Attempts (an hour by default) is kept
// one by one: a ring of them holds Attempts/Every plus a few (a round that
// runs late only makes fewer), never more than MaxPoints. Over the rest of
// the retention (24 hours by default) the attempts are kept the way
// smokeping keeps its pings: per bucket of time (a 288th of the retention,
// 5 minutes of 24 hours, and at least four attempts' worth), how many there
// were, how many failed and mostly with what, and the Quantiles of the
// total's and each phase's durations (to 0.05 %). A record of a target with
// P phases costs 13+4P bytes, a bucket 13+10(P+1): at 15 s over 24 hours, a
// target of four phases takes a sixth of what keeping every attempt took
// (docs/performance.md has the measured figure). The history is not
// persisted: a restart loses it, and Prometheus is the long-term store.
package history

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sink"
)

// DefaultRetain is how long a History keeps attempts when the schedule
// block sets no retain.
const DefaultRetain = 24 * time.Hour

// DefaultAttempts is how long a History keeps every attempt one by one when
// the schedule block sets no retain_attempts (and the retention is longer).
const DefaultAttempts = time.Hour

// MaxPoints bounds the attempts a History keeps per target, whatever the
// retention and the schedule.
const MaxPoints = 50_000

// absent marks a phase that did not run in an attempt (it came after the
// failed one, or the pipeline changed).
const absent = math.MaxUint32

// History is a sink keeping the recent attempts of every target. It is safe
// for concurrent use.
type History struct {
	retain   time.Duration
	attempts time.Duration // of retain, how long attempts are kept one by one
	size     int           // the most records per target
	width    int64         // of a bucket, in milliseconds; 0 when nothing is bucketed
	buckets  int           // the most buckets per target

	mu      sync.RWMutex
	order   []string // target names, in the file's order
	targets map[string]*ring
	classes []sdk.Class // classes[i-1] is class i of a record; 0 is ok
}

// ring is one target's records, oldest first from head once full.
type ring struct {
	phases  []string
	started []int64    // unix milliseconds
	total   []uint32   // microseconds
	class   []uint8    // 0 for ok, else index+1 in History.classes
	dur     [][]uint32 // dur[p][i]: microseconds of phases[p] in record i, or absent
	head    int        // where the next record goes once full
	size    int

	latest   *engine.Attempt
	since    time.Time // when the state (ok or failing) last changed
	notAfter time.Time // the leaf certificate's expiry, as last seen

	older  buckets // the attempts of the retention, per bucket
	open   int64   // the start of the bucket the newest attempt fell in
	opened bool    // open is set
}

// Options says what a History keeps.
type Options struct {
	// Retain is how long it keeps attempts; DefaultRetain when not
	// positive.
	Retain time.Duration
	// Attempts is how long, of Retain, it keeps every attempt one by one;
	// older ones are kept per bucket. DefaultAttempts when not positive;
	// never more than Retain, never less than two buckets' worth.
	Attempts time.Duration
	// Every is the schedule's interval; when not positive, every attempt
	// is kept one by one, at most MaxPoints a target.
	Every time.Duration
}

// New returns a History keeping the attempts of the last retain (when
// retain is not positive, DefaultRetain) of targets probed every apart,
// those of the last hour one by one.
func New(retain, every time.Duration) *History {
	return NewWith(Options{Retain: retain, Every: every})
}

// NewWith returns a History keeping what o says.
func NewWith(o Options) *History {
	h := &History{retain: cmp.Or(max(o.Retain, 0), DefaultRetain), size: MaxPoints, targets: make(map[string]*ring)}
	h.attempts = min(cmp.Or(max(o.Attempts, 0), DefaultAttempts), h.retain)
	if o.Every <= 0 {
		h.attempts = h.retain
		return h
	}
	span := h.attempts
	if h.attempts < h.retain {
		// A bucket is closed from the records, which must hold its
		// attempts whole until then: the ring holds two buckets' worth
		// at least, and a bucket at most half the ring.
		width := min(max(h.retain/bucketsPerRetain, 4*o.Every, time.Millisecond), MaxPoints/2*o.Every)
		h.width = width.Milliseconds()
		h.buckets = int(h.retain/width) + 2
		span = max(span, 2*width)
	}
	if span/o.Every < MaxPoints {
		h.size = int(span/o.Every) + 2
	}
	return h
}

// RetainAttempts returns how long, of the retention, h keeps every
// attempt one by one.
func (h *History) RetainAttempts() time.Duration { return h.attempts }

// Retain keeps the targets named (as the attempts name them: redacted), in
// that order, and forgets the others. Targets named that have no attempt
// yet are listed without any.
func (h *History) Retain(names []string) {
	kept := make(map[string]*ring, len(names))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range names {
		if r := h.targets[name]; r != nil {
			kept[name] = r
		} else {
			kept[name] = h.newRing()
		}
	}
	h.targets = kept
	h.order = slices.Clone(names)
}

// Attempt records a.
func (h *History) Attempt(a *engine.Attempt) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.targets[a.Target]
	if r == nil {
		r = h.newRing()
		h.targets[a.Target] = r
		h.order = append(h.order, a.Target)
	}
	var class uint8
	if !a.OK {
		class = h.classOf(a)
	}
	if r.latest == nil || r.latest.OK != a.OK {
		r.since = a.Started
	}
	latest := *a
	latest.Phases = slices.Clone(a.Phases) // their attrs are kept as they are (sink.Sink)
	if a.Failure != nil {
		f := *a.Failure
		latest.Failure = &f
	}
	r.latest = &latest
	if t, ok := certNotAfter(a); ok {
		r.notAfter = t
	}
	if h.width > 0 {
		h.bucket(r, a.Started.UnixMilli())
	}
	r.add(a, class)
	return nil
}

// newRing returns an empty ring of h's size.
func (h *History) newRing() *ring { return &ring{size: h.size, older: buckets{size: h.buckets}} }

// Flush does nothing: a History writes nothing out.
func (*History) Flush() error { return nil }

// Close does nothing: the history outlives the runs that feed it.
func (*History) Close(*engine.Result) error { return nil }

var _ sink.Sink = (*History)(nil)

// classOf returns a's failure class's index, interning it; classes past
// 254 share the last.
func (h *History) classOf(a *engine.Attempt) uint8 {
	c := sdk.Class("unknown")
	if a.Failure != nil {
		c = a.Failure.Class
	}
	if i := slices.Index(h.classes, c); i >= 0 {
		return uint8(i + 1)
	}
	if len(h.classes) == math.MaxUint8-1 {
		return math.MaxUint8 - 1
	}
	h.classes = append(h.classes, c)
	return uint8(len(h.classes))
}

// add appends a record of a, overwriting the oldest once the ring is full.
func (r *ring) add(a *engine.Attempt, class uint8) {
	for _, p := range a.Phases {
		if !slices.Contains(r.phases, p.Name) {
			r.phases = append(r.phases, p.Name)
			col := make([]uint32, len(r.started), cap(r.started))
			for i := range col {
				col[i] = absent
			}
			r.dur = append(r.dur, col)
		}
	}
	i := len(r.started)
	if i < r.size {
		if i == cap(r.started) {
			r.grow(min(r.size, max(16, 2*i)))
		}
		r.started = r.started[:i+1]
		r.total = r.total[:i+1]
		r.class = r.class[:i+1]
		for p := range r.dur {
			r.dur[p] = r.dur[p][:i+1]
		}
	} else {
		i = r.head
		r.head = (r.head + 1) % r.size
	}
	r.started[i] = a.Started.UnixMilli()
	r.total[i] = micros(a.Total)
	r.class[i] = class
	for p, name := range r.phases {
		r.dur[p][i] = absent
		for _, ph := range a.Phases {
			if ph.Name == name {
				r.dur[p][i] = micros(ph.Duration)
				break
			}
		}
	}
}

// grow gives the ring's columns capacity n, exactly, so that a full ring
// holds no slack.
func (r *ring) grow(n int) {
	r.started = resize(r.started, n)
	r.total = resize(r.total, n)
	r.class = resize(r.class, n)
	for p := range r.dur {
		r.dur[p] = resize(r.dur[p], n)
	}
}

// resize returns a copy of s with capacity n.
func resize[T any](s []T, n int) []T {
	t := make([]T, len(s), n)
	copy(t, s)
	return t
}

// micros returns d in microseconds, within a uint32 below absent.
func micros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), absent-1))
}

// certNotAfter returns the cert_not_after attribute of the first phase that
// reports one.
func certNotAfter(a *engine.Attempt) (time.Time, bool) {
	for _, p := range a.Phases {
		if s, ok := p.Attrs["cert_not_after"].(string); ok {
			t, err := time.Parse(time.RFC3339, s)
			return t, err == nil
		}
	}
	return time.Time{}, false
}

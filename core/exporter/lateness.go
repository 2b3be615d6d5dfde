package exporter

import (
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probe-dev/probe/core/engine"
)

// latenessBuckets are the upper bounds, in seconds, of
// probe_schedule_lateness_seconds: from a tenth of a millisecond to ten
// seconds.
var latenessBuckets = []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// lateness is the sink that observes how late each scheduled attempt
// started: its start less the start of its target's previous attempt (at
// the same address) and the interval. An attempt early by a timer's
// rounding counts as on time; a target's first attempt, and every attempt
// but the first of a round (run { attempts }), have nothing to be late for.
// It lives as long as a file's schedule: a reload starts a new one.
type lateness struct {
	hist  prometheus.Histogram
	every time.Duration
	prev  map[latenessKey]time.Time
}

// latenessKey is a target, and the address an attempt of it dialed.
type latenessKey struct {
	target string
	addr   netip.AddrPort
}

func newLateness(hist prometheus.Histogram, every time.Duration) *lateness {
	return &lateness{hist: hist, every: every, prev: map[latenessKey]time.Time{}}
}

func (l *lateness) Attempt(a *engine.Attempt) error {
	if a.Seq != 1 || l.every <= 0 {
		return nil
	}
	key := latenessKey{a.Target, a.Address}
	if prev, ok := l.prev[key]; ok {
		l.hist.Observe(max(0, a.Started.Sub(prev)-l.every).Seconds())
	}
	l.prev[key] = a.Started
	return nil
}

func (*lateness) Flush() error               { return nil }
func (*lateness) Close(*engine.Result) error { return nil }

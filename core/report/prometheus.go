package report

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probe-dev/probe/core/engine"
)

// Buckets are the upper bounds, in seconds, of the classic duration
// histograms: from half a millisecond (a loopback connect) to ten seconds.
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Layout says how Metrics lays out its duration histograms, of which it has
// one per target and phase, and one per target for the totals.
type Layout string

// The layouts.
const (
	// Classic histograms have the buckets of Buckets: 17 series each (14
	// buckets, +Inf, the sum and the count), 75 a TLS target with its
	// counter and gauges, in the text format as in Prometheus.
	Classic Layout = "classic"
	// Native histograms are Prometheus's native (sparse) histograms, their
	// buckets 2^(1/8) apart (at most 9 % wide) wherever the observations
	// fall, at most NativeMaxBuckets of them: one series each in a
	// Prometheus that scrapes them (2.42 and later, with
	// --enable-feature=native-histograms), and three in the text format,
	// which has no native buckets (+Inf, the sum and the count).
	Native Layout = "native"
)

// NativeMaxBuckets bounds the buckets of a native histogram: past it, the
// histogram halves its resolution.
const NativeMaxBuckets = 40

// gauges describes the metrics of one attempt, with variable labels first
// (none, or the target) and then each metric's own.
type gauges struct {
	labels                                        []string
	success, duration, phase, failure, cert, http *prometheus.Desc
}

// newGauges describes the gauges named prefix+"success" and so on, of the
// attempt whose is, with labels.
func newGauges(prefix, whose string, labels ...string) *gauges {
	desc := func(name, help string, own ...string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+name, help, slices.Concat(labels, own), nil)
	}
	return &gauges{
		labels:   labels,
		success:  desc("success", "Whether "+whose+" succeeded: every phase of it was ok."),
		duration: desc("duration_seconds", "How long "+whose+" took, all phases and the engine's overhead."),
		phase: desc("phase_duration_seconds",
			"How long each phase of "+whose+" ran; a failed phase reports how long it ran, phases that never ran are absent.", "phase"),
		failure: desc("failure", "1 for the phase and failure class "+whose+" failed with.", "phase", "class"),
		cert:    desc("tls_cert_not_after_seconds", "When the server's leaf certificate expires, in seconds since the Unix epoch, as "+whose+" saw it."),
		http:    desc("http_status_code", "The status code of the last HTTP response of "+whose+"."),
	}
}

func (gs *gauges) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gs.success, gs.duration, gs.phase, gs.failure, gs.cert, gs.http} {
		ch <- d
	}
}

// gist is what the gauges say of an attempt: Metrics keeps the gist of each
// target's latest attempt rather than the attempt, whose attributes (a TLS
// handshake's certificate facts, a resolver's answers) they do not show.
type gist struct {
	ok       bool
	total    time.Duration
	phases   []phaseGist
	failure  *[2]string // its phase and class; nil when ok
	notAfter int64      // the leaf certificate's expiry, Unix seconds; 0 for none
	http     []int      // the status code of each http phase that reports one
}

// phaseGist is a phase's name and duration.
type phaseGist struct {
	name string
	dur  time.Duration
}

// gistOf returns a's gist.
func gistOf(a *engine.Attempt) gist {
	g := gist{ok: a.OK, total: a.Total, phases: make([]phaseGist, len(a.Phases))}
	for i, p := range a.Phases {
		g.phases[i] = phaseGist{p.Name, p.Duration}
		if status, ok := p.Attrs["status"].(int); ok && p.Name == "http" {
			g.http = append(g.http, status)
		}
	}
	if f := a.Failure; f != nil {
		g.failure = &[2]string{f.Phase, string(f.Class)}
	}
	if t, ok := certNotAfter(a); ok {
		g.notAfter = t.Unix()
	}
	return g
}

// collect sends the metrics of g; values are the variable labels'.
func (gs *gauges) collect(send func(prometheus.Metric), g *gist, values ...string) {
	gauge := func(d *prometheus.Desc, v float64, own ...string) {
		send(prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, slices.Concat(values, own)...))
	}
	success := 0.0
	if g.ok {
		success = 1
	}
	gauge(gs.success, success)
	gauge(gs.duration, g.total.Seconds())
	for _, p := range g.phases {
		gauge(gs.phase, p.dur.Seconds(), p.name)
	}
	if f := g.failure; f != nil {
		gauge(gs.failure, 1, f[0], f[1])
	}
	if g.notAfter != 0 {
		gauge(gs.cert, float64(g.notAfter))
	}
	for _, status := range g.http {
		gauge(gs.http, float64(status))
	}
}

// certNotAfter returns the cert_not_after attribute of the first phase
// that reports one.
func certNotAfter(a *engine.Attempt) (time.Time, bool) {
	for _, p := range a.Phases {
		if s, ok := p.Attrs["cert_not_after"].(string); ok {
			t, err := time.Parse(time.RFC3339, s)
			return t, err == nil
		}
	}
	return time.Time{}, false
}

// probeGauges describe the metrics of /probe: the scrape names the target.
var probeGauges = newGauges("probe_", "the attempt")

// attemptCollector collects the metrics of one attempt.
type attemptCollector struct{ a *engine.Attempt }

// NewAttemptCollector returns a collector of the metrics of attempt a
// without a target label, as `probe serve` answers /probe?target=...:
// probe_success, probe_duration_seconds, probe_phase_duration_seconds{phase},
// probe_failure{phase,class} (when it failed),
// probe_tls_cert_not_after_seconds and probe_http_status_code (when a phase
// reported them).
func NewAttemptCollector(a *engine.Attempt) prometheus.Collector { return attemptCollector{a} }

func (c attemptCollector) Describe(ch chan<- *prometheus.Desc) { probeGauges.describe(ch) }
func (c attemptCollector) Collect(ch chan<- prometheus.Metric) {
	g := gistOf(c.a)
	probeGauges.collect(func(m prometheus.Metric) { ch <- m }, &g)
}

// Metrics accumulates attempts into metrics per target: the gauges of each
// target's latest attempt, as /probe has them but named probe_scheduled_*
// (probe_scheduled_success{target} ...) so that a rule on /probe's
// probe_success does not match them too, and over all its attempts the counters probe_attempts_total{target} and
// probe_attempt_failures_total{target,phase,class} and the histograms
// probe_attempt_duration_seconds{target} (successful attempts) and
// probe_attempt_phase_duration_seconds{target,phase} (successful phases).
// It is a prometheus.Collector, safe for concurrent use.
//
// It holds 1-2 KB a target at 10,000 TLS targets (its histograms' buckets
// the most of it, at most NativeMaxBuckets a histogram, and the gist of its
// latest attempt), which it renders into Prometheus's metrics when
// collected.
type Metrics struct {
	layout                             Layout
	gauges                             *gauges
	attempts, failures, totals, phases *prometheus.Desc

	mu      sync.Mutex // guards targets, and each series while it changes or is read
	targets map[string]*series
}

// series is what Metrics holds of one target.
type series struct {
	created  time.Time // of its attempts counter
	attempts uint64
	failures []failureCount
	total    *histogram // nil before a successful attempt
	phases   []phaseHistogram
	latest   latest
}

// failureCount counts a target's failures in one phase and class.
type failureCount struct {
	phase, class string
	created      time.Time
	n            uint64
}

// phaseHistogram is the histogram of a target's successful phases of a
// name.
type phaseHistogram struct {
	name string
	histogram
}

// latest is the gist of a target's latest attempt, and when it started.
type latest struct {
	started time.Time
	gist
}

// NewMetrics returns an empty Metrics whose histograms have layout.
func NewMetrics(layout Layout) *Metrics {
	return &Metrics{
		layout:   layout,
		gauges:   newGauges("probe_scheduled_", "the target's latest attempt", "target"),
		attempts: prometheus.NewDesc("probe_attempts_total", "Attempts finished.", []string{"target"}, nil),
		failures: prometheus.NewDesc("probe_attempt_failures_total", "Attempts failed, by the phase and class of their failure.",
			[]string{"target", "phase", "class"}, nil),
		totals: prometheus.NewDesc("probe_attempt_duration_seconds", "How long successful attempts took.",
			[]string{"target"}, nil),
		phases: prometheus.NewDesc("probe_attempt_phase_duration_seconds", "How long successful phases ran.",
			[]string{"target", "phase"}, nil),
		targets: map[string]*series{},
	}
}

// Attempt adds a to the metrics, as a sink of the attempts of scheduled
// probing: it never fails.
func (m *Metrics) Attempt(a *engine.Attempt) error {
	m.Add(a)
	return nil
}

// Flush does nothing: the metrics are collected when scraped.
func (m *Metrics) Flush() error { return nil }

// Close does nothing: the metrics outlive the stream, as they outlive a
// reload of the file whose schedule fed them.
func (m *Metrics) Close(*engine.Result) error { return nil }

// Add accounts for attempt a of its target.
func (m *Metrics) Add(a *engine.Attempt) {
	g := gistOf(a)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.targets[a.Target]
	if s == nil {
		s = &series{created: time.Now()}
		m.targets[a.Target] = s
	}
	s.attempts++
	for _, p := range a.Phases {
		if !p.OK {
			continue
		}
		i := slices.IndexFunc(s.phases, func(h phaseHistogram) bool { return h.name == p.Name })
		if i < 0 {
			i = len(s.phases)
			s.phases = append(s.phases, phaseHistogram{p.Name, newHistogram()})
		}
		s.phases[i].observe(p.Duration.Seconds(), m.layout)
	}
	if a.OK {
		if s.total == nil {
			h := newHistogram()
			s.total = &h
		}
		s.total.observe(a.Total.Seconds(), m.layout)
	}
	if f := a.Failure; f != nil {
		i := slices.IndexFunc(s.failures, func(c failureCount) bool { return c.phase == f.Phase && c.class == string(f.Class) })
		if i < 0 {
			i = len(s.failures)
			s.failures = append(s.failures, failureCount{phase: f.Phase, class: string(f.Class), created: time.Now()})
		}
		s.failures[i].n++
	}
	if s.latest.started.IsZero() || !a.Started.Before(s.latest.started) {
		s.latest = latest{a.Started, g}
	}
}

// Retain forgets every target but those named.
func (m *Metrics) Retain(targets []string) {
	keep := make(map[string]bool, len(targets))
	for _, name := range targets {
		keep[name] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.targets {
		if !keep[name] {
			delete(m.targets, name)
		}
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.gauges.describe(ch)
	for _, d := range []*prometheus.Desc{m.attempts, m.failures, m.totals, m.phases} {
		ch <- d
	}
}

// collectBatch is how many targets Collect renders per hold of the lock:
// Add waits for it no longer than a few of them take, however many targets
// there are.
const collectBatch = 64

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	names := make([]string, 0, len(m.targets))
	for name := range m.targets {
		names = append(names, name)
	}
	m.mu.Unlock()
	var out []prometheus.Metric
	for batch := range slices.Chunk(names, collectBatch) {
		out = out[:0]
		send := func(x prometheus.Metric) { out = append(out, x) }
		m.mu.Lock()
		for _, name := range batch {
			if s := m.targets[name]; s != nil {
				m.collect(send, name, s)
			}
		}
		m.mu.Unlock()
		for _, x := range out {
			ch <- x
		}
	}
}

// collect renders the metrics of target's series s; m.mu is held.
func (m *Metrics) collect(send func(prometheus.Metric), target string, s *series) {
	if !s.latest.started.IsZero() {
		m.gauges.collect(send, &s.latest.gist, target)
	}
	send(prometheus.MustNewConstMetricWithCreatedTimestamp(m.attempts, prometheus.CounterValue, float64(s.attempts), s.created, target))
	for _, f := range s.failures {
		send(prometheus.MustNewConstMetricWithCreatedTimestamp(m.failures, prometheus.CounterValue, float64(f.n), f.created,
			target, f.phase, f.class))
	}
	if s.total != nil {
		send(s.total.metric(m.totals, m.layout, target))
	}
	for _, p := range s.phases {
		send(p.metric(m.phases, m.layout, target, p.name))
	}
}

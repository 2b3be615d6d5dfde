package report

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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

// The gauges of an attempt, by their index in gauges' arrays.
const (
	gaugeSuccess = iota
	gaugeDuration
	gaugePhase
	gaugeFailure
	gaugeCert
	gaugeHTTP
	nGauges
)

// gauges describes the metrics of one attempt, with variable labels first
// (none, or the target) and then each metric's own.
type gauges struct {
	names, helps [nGauges]string
	descs        [nGauges]*prometheus.Desc
}

// newGauges describes the gauges named prefix+"success" and so on, of the
// attempt whose is, with labels.
func newGauges(prefix, whose string, labels ...string) *gauges {
	gs := &gauges{}
	desc := func(i int, name, help string, own ...string) {
		gs.names[i], gs.helps[i] = prefix+name, help
		gs.descs[i] = prometheus.NewDesc(prefix+name, help, slices.Concat(labels, own), nil)
	}
	desc(gaugeSuccess, "success", "Whether "+whose+" succeeded: every phase of it was ok.")
	desc(gaugeDuration, "duration_seconds", "How long "+whose+" took, all phases and the engine's overhead.")
	desc(gaugePhase, "phase_duration_seconds",
		"How long each phase of "+whose+" ran; a failed phase reports how long it ran, phases that never ran are absent.", "phase")
	desc(gaugeFailure, "failure", "1 for the phase and failure class "+whose+" failed with.", "phase", "class")
	desc(gaugeCert, "tls_cert_not_after_seconds", "When the server's leaf certificate expires, in seconds since the Unix epoch, as "+whose+" saw it.")
	desc(gaugeHTTP, "http_status_code", "The status code of the last HTTP response of "+whose+".")
	return gs
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
	http     int        // the status code of the last http phase that reports one; 0 for none
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
			g.http = status
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

// each builds the gauges of g from a, each series labelled with its own
// labels and then base, and gives put each with its gauge's index and the
// sort key of its own labels' values within the family. base's names must
// sort after "phase" (target, vantage), so that the labels stay sorted by
// name as the formats want them.
func (g *gist) each(a *arena, base []*dto.LabelPair, put func(gauge int, key string, m *dto.Metric)) {
	success := 0.0
	if g.ok {
		success = 1
	}
	put(gaugeSuccess, "", a.gauge(success, base))
	put(gaugeDuration, "", a.gauge(g.total.Seconds(), base))
	for _, p := range g.phases {
		put(gaugePhase, p.name, a.gauge(p.dur.Seconds(), a.labels(base, "phase", p.name)))
	}
	if f := g.failure; f != nil {
		put(gaugeFailure, f[1]+"\x00"+f[0], a.gauge(1, a.labels(base, "class", f[1], "phase", f[0])))
	}
	if g.notAfter != 0 {
		put(gaugeCert, "", a.gauge(float64(g.notAfter), base))
	}
	if g.http != 0 {
		put(gaugeHTTP, "", a.gauge(float64(g.http), base))
	}
}

// label returns the label name="value", kept for as long as its target
// (a gather makes its other labels with arena.labels).
func label(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: &name, Value: &value} }

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

func (c attemptCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range probeGauges.descs {
		ch <- d
	}
}

func (c attemptCollector) Collect(ch chan<- prometheus.Metric) {
	g := gistOf(c.a)
	g.each(&arena{}, nil, func(i int, _ string, m *dto.Metric) { ch <- built{probeGauges.descs[i], m} })
}

// built is a gauge built for a registry.
type built struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (b built) Desc() *prometheus.Desc { return b.desc }

func (b built) Write(out *dto.Metric) error {
	out.Label, out.Gauge = b.m.Label, b.m.Gauge
	return nil
}

// Metrics accumulates attempts into metrics per target: the gauges of each
// target's latest attempt, as /probe has them but named probe_scheduled_*
// (probe_scheduled_success{target} ...) so that a rule on /probe's
// probe_success does not match them too, and over all its attempts the
// counters probe_attempts_total{target} and
// probe_attempt_failures_total{target,phase,class} and the histograms
// probe_attempt_duration_seconds{target} (successful attempts) and
// probe_attempt_phase_duration_seconds{target,phase} (successful phases).
// It is a prometheus.Gatherer, safe for concurrent use; Merge joins it to
// a registry's.
//
// It holds 1-2 KB a target at 10,000 TLS targets (its histograms' buckets
// the most of it, at most NativeMaxBuckets a histogram, and the gist of its
// latest attempt), which it renders into Prometheus's metric families when
// gathered.
type Metrics struct {
	layout  Layout
	gauges  *gauges
	vantage []*dto.LabelPair // vantage="...", or none

	mu      sync.Mutex // guards targets and sorted, and each series while it changes or is read
	targets map[string]*series
	sorted  []string // the names of targets, sorted; nil when one came or went since
}

// series is what Metrics holds of one target.
type series struct {
	labels   []*dto.LabelPair // target="..." and the vantage
	created  time.Time        // of its attempts counter
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

// NewMetrics returns an empty Metrics whose histograms have layout, every
// series labelled vantage="..." when vantage is not empty.
func NewMetrics(layout Layout, vantage string) *Metrics {
	m := &Metrics{
		layout:  layout,
		gauges:  newGauges("probe_scheduled_", "the target's latest attempt", "target"),
		targets: map[string]*series{},
	}
	if vantage != "" {
		m.vantage = []*dto.LabelPair{label("vantage", vantage)}
	}
	return m
}

// Attempt adds a to the metrics, as a sink of the attempts of scheduled
// probing: it never fails.
func (m *Metrics) Attempt(a *engine.Attempt) error {
	m.Add(a)
	return nil
}

// Flush does nothing: the metrics are gathered when scraped.
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
		s = &series{labels: append([]*dto.LabelPair{label("target", a.Target)}, m.vantage...), created: time.Now()}
		m.targets[a.Target] = s
		m.sorted = nil
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
			m.sorted = nil
		}
	}
}

// gatherBatch is how many targets Gather renders per hold of the lock:
// Add waits for it no longer than a few of them take, however many targets
// there are.
const gatherBatch = 64

// Gather implements prometheus.Gatherer: the families of m, sorted by name
// and each family's series by their labels' values, as a registry's.
//
// It builds the families itself, where registering m as a collector in a
// registry had it build a prometheus.Metric per series for the registry to
// turn into the same families. It keeps only each target's own label; the
// others it makes per gather. At 10,000 TLS targets (190,000 series in the
// text format) that took 262 ms and 1.8 million allocations (98 MB) a
// scrape, most of it client_golang's checks and sorts of every series and
// the native histograms' buckets taken through maps, and 450-650 ms with
// the encoding; this takes 34-44 ms and 540 allocations (51 MB), and
// 95-135 ms encoded in any of the formats (BenchmarkMetricsGather).
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) {
	m.mu.Lock()
	if m.sorted == nil {
		m.sorted = slices.Sorted(maps.Keys(m.targets))
	}
	names := m.sorted
	m.mu.Unlock()
	var (
		gauges             [nGauges]family
		attempts, failures = newFamily("probe_attempts_total", "Attempts finished.", dto.MetricType_COUNTER),
			newFamily("probe_attempt_failures_total", "Attempts failed, by the phase and class of their failure.", dto.MetricType_COUNTER)
		totals = newFamily("probe_attempt_duration_seconds", "How long successful attempts took.", dto.MetricType_HISTOGRAM)
		phases = newFamily("probe_attempt_phase_duration_seconds", "How long successful phases ran.", dto.MetricType_HISTOGRAM)
	)
	for i := range gauges {
		gauges[i] = newFamily(m.gauges.names[i], m.gauges.helps[i], dto.MetricType_GAUGE)
	}
	var a arena
	putGauge := func(i int, key string, x *dto.Metric) { gauges[i].put(key, x) }
	for batch := range slices.Chunk(names, gatherBatch) {
		m.mu.Lock()
		for _, name := range batch {
			s := m.targets[name]
			if s == nil {
				continue // retired since
			}
			if !s.latest.started.IsZero() {
				s.latest.each(&a, s.labels, putGauge)
			}
			attempts.put("", a.counter(s.attempts, s.created, s.labels))
			for _, f := range s.failures {
				failures.put(f.class+"\x00"+f.phase, a.counter(f.n, f.created, a.labels(s.labels, "class", f.class, "phase", f.phase)))
			}
			if s.total != nil {
				totals.put("", s.total.write(&a, m.layout, s.labels))
			}
			for _, p := range s.phases {
				phases.put(p.name, p.write(&a, m.layout, a.labels(s.labels, "phase", p.name)))
			}
		}
		m.mu.Unlock()
	}
	out := []*dto.MetricFamily{totals.done(), failures.done(), phases.done(), attempts.done()}
	for i := range gauges {
		out = append(out, gauges[i].done())
	}
	out = slices.DeleteFunc(out, func(mf *dto.MetricFamily) bool { return len(mf.Metric) == 0 })
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

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

func (g *gauges) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.success, g.duration, g.phase, g.failure, g.cert, g.http} {
		ch <- d
	}
}

// collect sends the metrics of a to ch; values are the variable labels'.
func (g *gauges) collect(ch chan<- prometheus.Metric, a *engine.Attempt, values ...string) {
	gauge := func(d *prometheus.Desc, v float64, own ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, slices.Concat(values, own)...)
	}
	success := 0.0
	if a.OK {
		success = 1
	}
	gauge(g.success, success)
	gauge(g.duration, a.Total.Seconds())
	for _, p := range a.Phases {
		gauge(g.phase, p.Duration.Seconds(), p.Name)
	}
	if f := a.Failure; f != nil {
		gauge(g.failure, 1, f.Phase, string(f.Class))
	}
	if t, ok := certNotAfter(a); ok {
		gauge(g.cert, float64(t.Unix()))
	}
	for _, p := range a.Phases {
		if status, ok := p.Attrs["status"].(int); ok && p.Name == "http" {
			gauge(g.http, float64(status))
		}
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
func (c attemptCollector) Collect(ch chan<- prometheus.Metric) { probeGauges.collect(ch, c.a) }

// Metrics accumulates attempts into metrics per target: the gauges of each
// target's latest attempt, as /probe has them but named probe_scheduled_*
// (probe_scheduled_success{target} ...) so that a rule on /probe's
// probe_success does not match them too, and over all its attempts the counters probe_attempts_total{target} and
// probe_attempt_failures_total{target,phase,class} and the histograms
// probe_attempt_duration_seconds{target} (successful attempts) and
// probe_attempt_phase_duration_seconds{target,phase} (successful phases).
// It is a prometheus.Collector, safe for concurrent use.
type Metrics struct {
	gauges   *gauges
	attempts *prometheus.CounterVec
	failures *prometheus.CounterVec
	totals   *prometheus.HistogramVec
	phases   *prometheus.HistogramVec

	mu     sync.Mutex
	latest map[string]*engine.Attempt
}

// NewMetrics returns an empty Metrics whose histograms have layout.
func NewMetrics(layout Layout) *Metrics {
	opts := func(name, help string) prometheus.HistogramOpts {
		if layout == Native {
			// Without NativeHistogramMinResetDuration it never resets (which
			// Prometheus would see as a counter reset): past
			// NativeMaxBuckets it halves its resolution instead.
			return prometheus.HistogramOpts{Name: name, Help: help, Buckets: []float64{},
				NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: NativeMaxBuckets}
		}
		return prometheus.HistogramOpts{Name: name, Help: help, Buckets: Buckets}
	}
	return &Metrics{
		gauges: newGauges("probe_scheduled_", "the target's latest attempt", "target"),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_attempts_total",
			Help: "Attempts finished."}, []string{"target"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_attempt_failures_total",
			Help: "Attempts failed, by the phase and class of their failure."}, []string{"target", "phase", "class"}),
		totals: prometheus.NewHistogramVec(opts("probe_attempt_duration_seconds", "How long successful attempts took."),
			[]string{"target"}),
		phases: prometheus.NewHistogramVec(opts("probe_attempt_phase_duration_seconds", "How long successful phases ran."),
			[]string{"target", "phase"}),
		latest: map[string]*engine.Attempt{},
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
	m.attempts.WithLabelValues(a.Target).Inc()
	for _, p := range a.Phases {
		if p.OK {
			m.phases.WithLabelValues(a.Target, p.Name).Observe(p.Duration.Seconds())
		}
	}
	if a.OK {
		m.totals.WithLabelValues(a.Target).Observe(a.Total.Seconds())
	}
	if f := a.Failure; f != nil {
		m.failures.WithLabelValues(a.Target, f.Phase, string(f.Class)).Inc()
	}
	latest := *a
	m.mu.Lock()
	if prev := m.latest[a.Target]; prev == nil || !a.Started.Before(prev.Started) {
		m.latest[a.Target] = &latest
	}
	m.mu.Unlock()
}

// Retain forgets every target but those named.
func (m *Metrics) Retain(targets []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.latest {
		if slices.Contains(targets, name) {
			continue
		}
		delete(m.latest, name)
		l := prometheus.Labels{"target": name}
		m.attempts.DeletePartialMatch(l)
		m.failures.DeletePartialMatch(l)
		m.totals.DeletePartialMatch(l)
		m.phases.DeletePartialMatch(l)
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.gauges.describe(ch)
	m.attempts.Describe(ch)
	m.failures.Describe(ch)
	m.totals.Describe(ch)
	m.phases.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	// The attempts are copies that Add replaces and never changes: they are
	// sent without the lock, which Add would otherwise wait for, and with it
	// every attempt of a schedule, for as long as a scrape is read.
	m.mu.Lock()
	latest := make([]*engine.Attempt, 0, len(m.latest))
	for _, a := range m.latest {
		latest = append(latest, a)
	}
	m.mu.Unlock()
	for _, a := range latest {
		m.gauges.collect(ch, a, a.Target)
	}
	m.attempts.Collect(ch)
	m.failures.Collect(ch)
	m.totals.Collect(ch)
	m.phases.Collect(ch)
}

// Package exporter is the Prometheus side of probe: an HTTP handler in the
// multi-target exporter pattern of blackbox_exporter, where Prometheus asks
// /probe?target=NAME and gets the metrics of one attempt probed there and
// then, plus /metrics with the exporter's own health and, when the pipeline
// file has a schedule block, the histograms of the targets it probes on its
// own. The file can be swapped while probes run (Reload). A Server serves
// the handler within bounds on connections, probes and time, so that
// neither a client that misbehaves nor the process's limits make a scrape
// fail or a probe_success 0.
package exporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/history"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sink"
	"github.com/probe-dev/probe/core/status"
)

// ScrapeTimeoutHeader is the header in which Prometheus sends its scrape
// timeout, in seconds.
const ScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"

// Options configure an Exporter.
type Options struct {
	// Load loads the pipeline file: New calls it once, Reload again. It
	// reports a file with errors as an error whose text says why (its
	// diagnostics): the log shows it, and so does the answer to a failed
	// POST /-/reload. The exporter closes the file once no probe uses it,
	// then release, when not nil: what the file needed (plugin processes).
	Load func() (file *config.File, release io.Closer, err error)
	// Logger receives the exporter's logs and is the engine's logger. When
	// it is an hclog.InterceptLogger, /metrics counts the lines it writes,
	// by level. Default: none.
	Logger hclog.Logger
	// MaxProbes bounds the probes /probe runs at once, so that the
	// process's limits are never a target's failure: a scrape that finds
	// them all busy waits for one as long as its attempt's whole deadline
	// still fits in the scrape's time (Prometheus's timeout; without it,
	// for up to the attempt's timeout), and is otherwise answered 503 and
	// counted in probe_exporter_scrapes_shed_total. Scheduled probing is
	// bounded apart, as probe run is. Default: what RLIMIT_NOFILE leaves
	// room for, beside a Server's connections (ServerOptions.MaxConns),
	// at most DefaultMaxConns.
	MaxProbes int
	// Sinks, when not nil, makes sinks from the first file loaded (an
	// OpenTelemetry export, which the file configures); they are given every
	// attempt the exporter makes, scheduled or scraped, one at a time. A
	// sink that is a prometheus.Collector joins /metrics (its counts). The
	// sinks outlive the files: the exporter never closes them; a stream of a
	// file that is retired closes them with a nil result, which a sink that
	// outlives its stream ignores.
	Sinks func(first *config.File) ([]sink.Sink, error)
}

// Exporter serves /probe, /metrics and /-/reload. It owns the files Load
// returns and closes each once no probe uses it any more.
type Exporter struct {
	load     func() (*config.File, io.Closer, error)
	vantage  string
	layout   report.Layout // of the histograms of scheduled probing
	log      hclog.Logger
	unsink   func() // deregisters the log line counter
	registry *prometheus.Registry
	// registerer registers in registry, labelling the series with the
	// vantage.
	registerer prometheus.Registerer
	sinks      *serial         // Options.Sinks
	metrics    *report.Metrics // scheduled probing; /metrics merges its families with registry's
	// history keeps the attempts of scheduled probing for the status page;
	// guarded by mu, replaced when a reload changes the schedule.
	history      *history.History
	historyEvery time.Duration // the schedule the history was made for
	probes       *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	reloaded     prometheus.Gauge
	reloadAt     prometheus.Gauge
	shed         prometheus.Counter
	// lateness is how late scheduled attempts started (lateness.go).
	lateness prometheus.Histogram
	// skipped counts the targets a round of the schedule did not probe:
	// their attempts of the round before were still running.
	skipped prometheus.Counter
	refused *prometheus.CounterVec
	// slots holds a token per probe /probe runs.
	slots chan struct{}

	reloadMu sync.Mutex // one Reload or Close at a time; guards state.stop
	mu       sync.Mutex // guards cur and closed
	cur      *state
	closed   bool
}

// state is one loaded file and what runs on it.
type state struct {
	file    *config.File
	release io.Closer // nil for nothing
	engine  *engine.Engine
	// stream feeds the attempts of scheduled probing to the exporter's
	// sinks.
	stream  *sink.Stream
	targets map[string]*engine.Target
	// inflight counts the probes using the state; the file is closed when
	// the state is retired and they are done.
	inflight sync.WaitGroup
	// stop ends scheduled probing and waits for it; nil without a schedule.
	stop func()
}

// New loads the file with opts.Load and returns an exporter serving it,
// probing on the file's schedule if it has one.
func New(opts Options) (*Exporter, error) {
	e := &Exporter{
		load:     opts.Load,
		log:      opts.Logger,
		unsink:   func() {},
		registry: prometheus.NewRegistry(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_exporter_probes_total",
			Help: "Attempts probed, by what asked for them (scrape or schedule) and their result."}, []string{"trigger", "result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_exporter_config_reloads_total",
			Help: "Reloads of the pipeline file, by result."}, []string{"result"}),
		reloaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_exporter_config_last_reload_successful",
			Help: "Whether the last load of the pipeline file succeeded."}),
		reloadAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the pipeline file was last loaded successfully, in seconds since the Unix epoch."}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "probe_schedule_lateness_seconds",
			Help:    "How much later than the schedule's interval after its previous attempt each scheduled attempt of a target started.",
			Buckets: latenessBuckets}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_schedule_skipped_total",
			Help: "Scheduled attempts not made: the target's attempts of the round before were still running when it was due again (its timeout, or its attempts, take longer than the interval)."}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_exporter_scrapes_shed_total",
			Help: "Scrapes of /probe answered 503 unprobed: every probe slot was busy for as long as the scrape could wait."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_exporter_adhoc_refused_total",
			Help: "Scrapes of /probe answered 403 unprobed: a target the file does not allow (not_allowed), or a pipeline with a secret for a host the file does not name (sensitive)."},
			[]string{"reason"}),
	}
	maxProbes := opts.MaxProbes
	if maxProbes <= 0 {
		_, maxProbes = limits()
	}
	e.slots = make(chan struct{}, maxProbes)
	slots := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_exporter_probes_max",
		Help: "The most probes /probe runs at once."})
	slots.Set(float64(maxProbes))
	// The Go collector's defaults, plus the scheduling delay histogram
	// (go_sched_latencies_seconds): how long the process's goroutines
	// waited to run, which its measured phases include; and the live heap
	// (go_gc_heap_live_bytes): what the process holds, marked by the last
	// collection, which the resident set also counts the collector's slack
	// in.
	goCollector := collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$|^/gc/heap/live:bytes$`)}))
	if e.log == nil {
		e.log = hclog.NewNullLogger()
	}
	var lines *prometheus.CounterVec
	if il, ok := e.log.(hclog.InterceptLogger); ok {
		lines = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "probe_exporter_log_messages_total",
			Help: "Log lines written, by level."}, []string{"level"})
		sink := &logCounter{lines: lines, level: il.GetLevel}
		il.RegisterSink(sink)
		e.unsink = func() { il.DeregisterSink(sink) }
	}
	file, release, err := e.load()
	if err != nil {
		e.unsink()
		return nil, err
	}
	// The first file's vantage labels every series for the exporter's life,
	// and its histogram layout shapes them.
	e.vantage = file.Vantage
	e.layout = layout(file)
	e.metrics = report.NewMetrics(e.layout, e.vantage)
	reg := report.VantageRegisterer(e.registry, e.vantage)
	e.registerer = reg
	reg.MustRegister(goCollector, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		e.probes, e.reloads, e.reloaded, e.reloadAt, e.shed, e.refused, slots, e.lateness, e.skipped)
	if lines != nil {
		reg.MustRegister(lines)
	}
	e.sinks = &serial{log: e.log}
	if opts.Sinks != nil {
		if e.sinks.sinks, err = opts.Sinks(file); err != nil {
			e.unsink()
			_ = file.Close()
			if release != nil {
				_ = release.Close()
			}
			return nil, err
		}
	}
	for _, k := range e.sinks.sinks {
		if c, ok := k.(prometheus.Collector); ok {
			reg.MustRegister(c)
		}
	}
	e.loaded()
	e.cur = e.newState(file, release)
	e.history.Retain(e.cur.names())
	e.startSchedule(e.cur)
	return e, nil
}

// newState makes the state of file. Its scheduled attempts stream to the
// exporter's sinks (the metrics of scheduled probing, the count of probes,
// the status page's history), and nothing else: the runs keep none of them.
// A file whose schedule differs from the history's gets a new, empty one.
func (e *Exporter) newState(file *config.File, release io.Closer) *state {
	opts := file.Options
	opts.Logger = e.log
	// A round's result is dropped once it is done: the sinks have every
	// attempt, so the engine keeps neither the attempts nor the targets'
	// results, which would otherwise be held for the whole round.
	opts.DiscardAttempts = true
	opts.DiscardTargets = true
	s := &state{file: file, release: release, engine: engine.New(opts), targets: make(map[string]*engine.Target, len(file.Targets))}
	for _, t := range file.Targets {
		s.targets[t.Name] = t
	}
	sched := file.Schedule
	e.mu.Lock()
	// A reload keeps the history unless what it keeps changes.
	fresh := history.NewWith(history.Options{Retain: sched.Retain, Attempts: sched.RetainAttempts, Every: sched.Every})
	if e.history == nil || e.history.Retention() != fresh.Retention() || e.history.RetainAttempts() != fresh.RetainAttempts() || e.historyEvery != sched.Every {
		e.history, e.historyEvery = fresh, sched.Every
	}
	hist := e.history
	e.mu.Unlock()
	s.stream = sink.Attach(s.engine, e.metrics, scheduled{e.probes}, newLateness(e.lateness, sched.Every), hist, e.sinks)
	return s
}

// names returns the names of s's targets as the attempts have them:
// redacted.
func (s *state) names() []string {
	names := make([]string, len(s.file.Targets))
	for i, t := range s.file.Targets {
		names[i] = s.engine.Redactor().Target(t).Name
	}
	return names
}

// startSchedule starts probing s's targets on the file's schedule, if it
// has one.
func (e *Exporter) startSchedule(s *state) {
	every := s.file.Schedule.Every
	if every <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.schedule(ctx, s, every)
	}()
	s.stop = func() { cancel(); <-done }
}

// stopSchedule stops s's scheduled probing and waits for it: attempts in
// flight are canceled and not recorded.
func (s *state) stopSchedule() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// schedule probes every target of s, every apart, until ctx ends
// (engine.Schedule: each target every apart, the targets spread over the
// interval, none waiting for another).
func (e *Exporter) schedule(ctx context.Context, s *state, every time.Duration) {
	e.log.Info("scheduled probing", "targets", len(s.file.Targets), "every", every)
	warned := false
	s.engine.Schedule(ctx, s.file.Targets, every, func(skipped int) {
		if err := s.stream.Flush(); err != nil {
			e.log.Warn("scheduled probing: a sink failed", "error", err)
		}
		if skipped == 0 {
			return
		}
		e.skipped.Add(float64(skipped))
		if !warned {
			warned = true
			e.log.Warn("scheduled probing: targets still probing since the round before were not probed again; their timeout or attempts take longer than the interval (counted in probe_schedule_skipped_total)",
				"skipped", skipped, "every", every)
		}
	})
}

// Reload loads the file again and swaps it in: probes in flight finish on
// the old one, which is closed after them; new probes use the new one.
// Scheduled probing restarts on the new file, and the metrics of targets it
// no longer has are dropped. When the file does not load, the exporter keeps
// the old one and Reload returns the error.
func (e *Exporter) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	file, release, err := e.load()
	if err == nil && file.Vantage != e.vantage {
		_ = file.Close()
		if release != nil {
			_ = release.Close()
		}
		err = fmt.Errorf("the file's vantage is now %q, not %q: a vantage labels every series from the start, so changing it takes a restart", file.Vantage, e.vantage)
	} else if err == nil && layout(file) != e.layout {
		_ = file.Close()
		if release != nil {
			_ = release.Close()
		}
		err = fmt.Errorf("the schedule's histograms are now %q, not %q: the layout of the histograms is set from the start, so changing it takes a restart", layout(file), e.layout)
	}
	if err != nil {
		e.reloads.WithLabelValues("failure").Inc()
		e.reloaded.Set(0)
		e.log.Warn("reload failed; still serving the previous file", "error", err)
		return err
	}
	next := e.newState(file, release)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.retire(next)
		return errors.New("exporter closed")
	}
	old := e.cur
	e.cur = next
	e.mu.Unlock()
	old.stopSchedule()
	names := next.names()
	e.metrics.Retain(names)
	e.mu.Lock()
	e.history.Retain(names)
	e.mu.Unlock()
	e.startSchedule(next)
	go e.retire(old)
	e.reloads.WithLabelValues("success").Inc()
	e.loaded()
	e.log.Info("reloaded", "targets", len(file.Targets), "pipelines", len(file.Pipelines))
	return nil
}

// layout returns the layout of the histograms of file's schedule.
func layout(file *config.File) report.Layout {
	return report.Layout(cmp.Or(file.Schedule.Histograms, string(report.Native)))
}

func (e *Exporter) loaded() {
	e.reloaded.Set(1)
	e.reloadAt.SetToCurrentTime()
}

// retire stops s's schedule, waits for its probes and closes its file.
func (e *Exporter) retire(s *state) {
	s.stopSchedule()
	s.inflight.Wait()
	err := errors.Join(s.stream.Close(nil), s.file.Close())
	if s.release != nil {
		err = errors.Join(err, s.release.Close())
	}
	if err != nil {
		e.log.Warn("close pipeline file", "file", s.file.Path, "error", err)
	}
}

// Close stops scheduled probing, waits for the probes in flight, closes the
// file and stops counting the logger's lines. The handler answers 503
// afterwards.
func (e *Exporter) Close() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.mu.Lock()
	s, closed := e.cur, e.closed
	e.closed = true
	e.mu.Unlock()
	if !closed {
		e.retire(s)
		e.unsink()
	}
	return nil
}

// scheduled reports whether the current file has a schedule.
func (e *Exporter) scheduled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed && e.cur.file.Schedule.Every > 0
}

// acquire returns the current state, counted in flight; nil once closed.
func (e *Exporter) acquire() *state {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.cur.inflight.Add(1)
	return e.cur
}

// Handler returns the exporter's HTTP handler: /probe, /metrics, /-/reload
// (POST), the status page's API under /api/v1/ and, at /, the status page
// when the file has a schedule (core/status), a short index otherwise.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/probe", e.probe)
	// /metrics is compressed as the client accepts (gzip, zstd) by
	// klauspost/compress's gzhttp in place of promhttp, whose gzip is
	// compress/gzip at its default level: 107 ms for the 15 MB answer of
	// 10,000 targets, where gzhttp's takes 30 ms for an answer 5 % larger
	// (BenchmarkScrapeCompression), and Prometheus asks every scrape gzipped.
	mux.Handle("/metrics", gzhttp.GzipHandler(promhttp.HandlerFor(report.Merge(e.registry, e.metrics),
		promhttp.HandlerOpts{Registry: e.registerer, DisableCompression: true})))
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := e.Reload(); err != nil {
			e.fail(w, http.StatusInternalServerError, "reload failed: "+err.Error())
		}
	})
	page := status.Handler(func() *history.History {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.history
	})
	mux.Handle("/api/v1/", page)
	mux.Handle("GET /assets/", page)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if e.scheduled() {
			page.ServeHTTP(w, r)
			return
		}
		e.index(w, r)
	})
	return mux
}

// fail answers status with msg, redacted as the attempts are (a scrape may
// name a target whose name holds a secret). An answer names files by their
// base name: the directory of the pipeline file, which a load's diagnostics
// name, and any other absolute path (basePaths) are the server's business.
func (e *Exporter) fail(w http.ResponseWriter, status int, msg string) {
	e.mu.Lock()
	path, redactor := e.cur.file.Path, e.cur.engine.Redactor()
	e.mu.Unlock()
	if dir := filepath.Dir(path); dir != "." {
		msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	}
	http.Error(w, basePaths(redactor.Redact(msg)), status)
}

// probe answers /probe?target=NAME, or /probe?target=HOST:PORT&pipeline=NAME
// for a target that is not in the file, with the metrics of one attempt.
func (e *Exporter) probe(w http.ResponseWriter, r *http.Request) {
	s := e.acquire()
	if s == nil {
		http.Error(w, "probe is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.inflight.Done()
	q := r.URL.Query()
	pipeline, name := q.Get("pipeline"), q.Get("target")
	if m := q.Get("module"); pipeline == "" && m != "" {
		switch {
		case s.targets[name+" ("+m+")"] != nil:
			name += " (" + m + ")" // probe import's name for a target that several modules probe
		case s.targets[name] == nil:
			pipeline = m // blackbox's form: a target the file lacks, probed with the pipeline named as the module
		}
	}
	t, err := s.target(name, pipeline)
	if err != nil {
		status := http.StatusBadRequest
		if ref := (*refusal)(nil); errors.As(err, &ref) {
			status = http.StatusForbidden
			e.refused.WithLabelValues(ref.reason).Inc()
		}
		e.fail(w, status, err.Error())
		return
	}
	scrape, limited, err := scrapeTimeout(r.Header)
	if err != nil {
		e.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	// The attempt's deadline, and how long the scrape may wait for a slot
	// with that deadline still ahead of it.
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = s.engine.Options().Timeout
	}
	wait := timeout
	if limited {
		timeout = min(timeout, scrape)
		wait = scrape - timeout
	}
	// A scrape whose client has gone (its connection closed: a keep-alive
	// one the server closed as the request came, which the client sends
	// again) is neither probed nor counted, and a probe whose client goes
	// meanwhile is not counted.
	gone := r.Context().Err
	if err := e.slot(r.Context(), wait); err != nil {
		if errors.Is(err, errBusy) && gone() == nil {
			e.shed.Inc()
			e.fail(w, http.StatusServiceUnavailable, err.Error())
		}
		return
	}
	defer func() { <-e.slots }()
	if gone() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	a := s.engine.Probe(ctx, t) // redacted, as the stream's attempts are
	if gone() != nil {
		return
	}
	e.probes.WithLabelValues("scrape", result(a.OK)).Inc()
	_ = e.sinks.Attempt(&a) // logs its sinks' errors
	if e.log.IsDebug() {
		args := []any{"target", a.Target, "ok", a.OK, "total", a.Total}
		if f := a.Failure; f != nil {
			args = append(args, "phase", f.Phase, "class", f.Class, "error", f.Message)
		}
		e.log.Debug("probed", args...)
	}
	reg := prometheus.NewRegistry()
	vreg := report.VantageRegisterer(reg, e.vantage)
	vreg.MustRegister(report.NewAttemptCollector(&a))
	if s.file.Serve.BlackboxNames {
		vreg.MustRegister(blackboxCollector{&a, t})
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// errBusy says that every probe slot stayed busy.
var errBusy = errors.New("busy")

// slot takes a probe slot, waiting for one for up to wait; it fails with
// errBusy when none came, or with ctx's error.
func (e *Exporter) slot(ctx context.Context, wait time.Duration) error {
	select {
	case e.slots <- struct{}{}:
		return nil
	default:
	}
	busy := fmt.Errorf("probe is %w: its %d probes at once are running, and the scrape could not wait %v more for one "+
		"and still give its attempt the whole deadline", errBusy, cap(e.slots), wait.Round(time.Millisecond))
	if wait <= 0 {
		return busy
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case e.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return busy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// target returns the file's target name, or with pipeline the target for
// the host:port name probed with the file's pipeline of that name, as adhoc
// allows it. The errors name what the scrape asked for and what the file
// has, not the file.
func (s *state) target(name, pipeline string) (*engine.Target, error) {
	if name == "" {
		return nil, errors.New("missing parameter target: /probe?target=NAME, or /probe?target=HOST:PORT&pipeline=NAME")
	}
	if pipeline == "" {
		t := s.targets[name]
		if t == nil {
			return nil, fmt.Errorf("no target named %q; for another host, add &pipeline=NAME (pipelines: %s)",
				name, strings.Join(s.file.PipelineNames(), ", "))
		}
		return t, nil
	}
	p := s.file.Pipelines[pipeline]
	if p == nil {
		return nil, fmt.Errorf("no pipeline named %q (pipelines: %s)", pipeline, strings.Join(s.file.PipelineNames(), ", "))
	}
	host, port, err := splitTarget(name)
	if err != nil {
		return nil, err
	}
	return s.adhoc(name, pipeline, host, port)
}

// scrapeTimeout returns the deadline a probe has within Prometheus's scrape
// timeout: the header's value less a tenth, at most half a second, left to
// answer. ok is false without the header, and for a timeout too long for a
// deadline (beyond 290 years), which leaves the file's. A value that is not
// a positive number of seconds (NaN, ±Inf, 0, negative), or leaves no time
// at all, is an error.
func scrapeTimeout(h http.Header) (timeout time.Duration, ok bool, err error) {
	v := h.Get(ScrapeTimeoutHeader)
	if v == "" {
		return 0, false, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs <= 0 {
		return 0, false, fmt.Errorf("header %s: %q is not a positive number of seconds", ScrapeTimeoutHeader, v)
	}
	if secs >= math.MaxInt64/float64(time.Second) {
		return 0, false, nil
	}
	d := time.Duration(secs * float64(time.Second))
	if d -= min(d/10, 500*time.Millisecond); d <= 0 {
		return 0, false, fmt.Errorf("header %s: %q leaves no time to probe", ScrapeTimeoutHeader, v)
	}
	return d, true, nil
}

// index lists the endpoints and the file's targets, their names and hosts
// redacted as a run's result has them.
func (e *Exporter) index(w http.ResponseWriter, _ *http.Request) {
	s := e.acquire()
	if s == nil {
		http.Error(w, "probe is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.inflight.Done()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "probe exporter for %s\n\n", filepath.Base(s.file.Path))
	fmt.Fprintln(w, "/probe?target=NAME                    probe a target of the file once")
	fmt.Fprintln(w, "/probe?target=HOST:PORT&pipeline=NAME probe another host with a pipeline of the file")
	fmt.Fprintln(w, "/metrics                              the exporter's own metrics and scheduled probing")
	fmt.Fprintln(w, "/api/v1/targets                       the status page's API (with a schedule block, the page is at /)")
	fmt.Fprintln(w, "\ntargets:")
	for _, t := range s.file.Targets {
		t = s.engine.Redactor().Target(t)
		fmt.Fprintf(w, "  %s (%s:%d, pipeline %s)\n", t.Name, t.Host, t.Port, t.Pipeline.Name)
	}
	pipelines := s.file.PipelineNames()
	for i, p := range pipelines {
		if len(s.file.Sensitive(p)) > 0 {
			pipelines[i] += " (holds a sensitive value: the file's targets only)"
		}
	}
	fmt.Fprintln(w, "pipelines:", strings.Join(pipelines, ", "))
}

// serial hands attempts to sinks one at a time, whether they come from the
// stream of scheduled probing or from scrapes; a sink that fails is logged
// and fed no more, the others go on.
type serial struct {
	log    hclog.Logger
	mu     sync.Mutex
	sinks  []sink.Sink
	failed []bool
}

func (s *serial) Attempt(a *engine.Attempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = make([]bool, len(s.sinks))
	}
	for i, k := range s.sinks {
		if s.failed[i] {
			continue
		}
		if err := k.Attempt(a); err != nil {
			s.failed[i] = true
			s.log.Error("a sink failed: it gets no more attempts", "error", err)
		}
	}
	return nil
}

func (s *serial) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, k := range s.sinks {
		errs = append(errs, k.Flush())
	}
	return errors.Join(errs...)
}

// Close does nothing: the sinks outlive the streams.
func (*serial) Close(*engine.Result) error { return nil }

// scheduled is the sink that counts the attempts of scheduled probing in
// probe_exporter_probes_total.
type scheduled struct{ probes *prometheus.CounterVec }

func (c scheduled) Attempt(a *engine.Attempt) error {
	c.probes.WithLabelValues("schedule", result(a.OK)).Inc()
	return nil
}

func (scheduled) Flush() error               { return nil }
func (scheduled) Close(*engine.Result) error { return nil }

var _ sink.Sink = scheduled{}

func result(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

// logCounter counts log lines by level, those the logger writes.
type logCounter struct {
	lines *prometheus.CounterVec
	level func() hclog.Level
}

func (c *logCounter) Accept(_ string, level hclog.Level, _ string, _ ...any) {
	if level >= c.level() {
		c.lines.WithLabelValues(level.String()).Inc()
	}
}

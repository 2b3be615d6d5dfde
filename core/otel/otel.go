// Package otel exports attempts as OpenTelemetry traces and metrics over
// OTLP, with the official Go SDK: it is a sink (core/sink) of the engine's
// stream of finished, redacted attempts. The metrics are the phase
// histograms, counters and probe.success of `probe serve`'s /metrics,
// exported every OTEL_METRIC_EXPORT_INTERVAL. Each attempt is a trace: a root span for the
// attempt, from its start to its end, and a child span per phase with the
// start and duration the engine measured, attributed by the OpenTelemetry
// semantic conventions (server.address, server.port, network.peer.address,
// dns.question.name, tls.protocol.version, tls.server.not_after,
// http.response.status_code, error.type = the failure class); a failed
// attempt and its failed phase have status Error.
//
// Export never slows probing: Attempt only queues the spans for the SDK's
// batch span processor, which exports them on its own goroutine, and a
// queue kept full by a slow or dead collector drops spans, counted in
// probe_otel_spans_dropped_total, instead of waiting; it adds to the
// metrics in memory, which the SDK's periodic reader exports on its own
// goroutine.
package otel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sink"
)

// DefaultQueueSize is how many spans wait for export at most: about 500
// attempts of four phases.
const DefaultQueueSize = 2048

// shutdownTimeout bounds how long Close waits for the last spans and
// metrics to go out.
const shutdownTimeout = 5 * time.Second

// Options configure the export. Every field may be left zero: the SDK then
// reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
// insecure, timeout, certificate, compression; a signal's own, _TRACES_ or
// _METRICS_, first), OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT, and
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES for the resource.
type Options struct {
	// Endpoint is where spans and metrics go: the collector's base URL
	// (http://collector:4318, https://...; /v1/traces and /v1/metrics are
	// added to its path), or host:port. Empty: the signal's variable
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, _METRICS_ENDPOINT), then
	// OTEL_EXPORTER_OTLP_ENDPOINT, then localhost:4318.
	Endpoint string
	// Headers are sent with every export (an API key), beside those of
	// OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string
	// Insecure sends over plain HTTP (or gRPC without TLS) to an endpoint
	// given as host:port.
	Insecure bool
	// Protocol is "http/protobuf" (the default, port 4318) or "grpc" (port
	// 4317). Empty: the signal's variable (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
	// _METRICS_PROTOCOL), then OTEL_EXPORTER_OTLP_PROTOCOL, then
	// http/protobuf.
	Protocol string
	// Vantage, when not empty, is the resource attributes probe.vantage
	// and service.instance.id.
	Vantage string
	// Version is probe's, the resource's service.version.
	Version string
	// Hosts says the host and port a target probes, for server.address
	// and server.port; nil, or ok false, leaves them out.
	Hosts func(target string) (host string, port uint16, ok bool)
	// QueueSize bounds the spans waiting for export; DefaultQueueSize when
	// zero.
	QueueSize int
	// Logger receives the export's errors (a collector that does not
	// answer) and, when the sink closes, what it dropped. New makes it the
	// OpenTelemetry SDK's global error handler. Default: none.
	Logger hclog.Logger
}

// Sink exports attempts as traces and metrics. It is a sink.Sink and a
// prometheus.Collector of its own counts.
type Sink struct {
	// provider and tracer are nil when traces are off
	// (OTEL_TRACES_EXPORTER=none).
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// meters is nil when metrics are off (OTEL_METRICS_EXPORTER=none).
	meters *meters
	hosts  func(string) (string, uint16, bool)
	gate   *gate
	log    hclog.Logger
}

// New returns a Sink exporting as opts say. It connects lazily: a
// collector that is down makes no error here, only dropped spans and
// failed metric exports. OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER
// "none" turns that signal off; "otlp", or nothing, leaves it on.
func New(ctx context.Context, opts Options) (*Sink, error) {
	traces, err := signalOn("OTEL_TRACES_EXPORTER")
	if err != nil {
		return nil, err
	}
	metrics, err := signalOn("OTEL_METRICS_EXPORTER")
	if err != nil {
		return nil, err
	}
	if err := checkEndpoint(opts.Endpoint); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("otel export", "error", err) }))
	attrs := []attribute.KeyValue{semconv.ServiceName("probe")}
	if opts.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(opts.Version))
	}
	if opts.Vantage != "" {
		// The vantage is also the instance: the backends that map the
		// resource to Prometheus's job and instance (a collector's
		// prometheus exporter, Prometheus's OTLP receiver) would otherwise
		// merge the series of two vantage points into one.
		attrs = append(attrs, VantageKey.String(opts.Vantage), semconv.ServiceInstanceID(opts.Vantage))
	}
	// The environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) overrides
	// the defaults, as the SDK's users expect.
	res, err := resource.Merge(resource.NewSchemaless(attrs...), resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	size := opts.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	s := &Sink{hosts: opts.Hosts, gate: &gate{size: int64(size)}, log: log}
	if traces {
		exp, err := traceExporter(ctx, opts)
		if err != nil {
			return nil, err
		}
		// The batch processor's own queue has room for every span the gate
		// lets through: spans are dropped by the gate, where they are
		// counted, never silently by the processor. It never blocks: a full
		// queue drops.
		bsp := sdktrace.NewBatchSpanProcessor(gateOut{s.gate, exp}, sdktrace.WithMaxQueueSize(2*size))
		s.provider = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithIDGenerator(ids{}),
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(gateIn{s.gate, bsp}))
		s.tracer = s.provider.Tracer("github.com/probe-dev/probe/core/otel")
	}
	if metrics {
		exp, err := metricExporter(ctx, opts)
		if err != nil {
			return nil, err
		}
		if s.meters, err = newMeters(res, exp); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// VantageKey is the resource attribute naming the vantage point.
const VantageKey = attribute.Key("probe.vantage")

// signalOn says whether the variable (OTEL_TRACES_EXPORTER,
// OTEL_METRICS_EXPORTER) leaves its signal's export on.
func signalOn(variable string) (bool, error) {
	switch v := os.Getenv(variable); v {
	case "", "otlp":
		return true, nil
	case "none":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: probe exports otlp or none", variable, v)
	}
}

// protocol is the OTLP protocol of a signal (TRACES, METRICS): opts', else
// the signal's variable, else OTEL_EXPORTER_OTLP_PROTOCOL.
func protocol(opts Options, signal string) (string, error) {
	p := opts.Protocol
	for _, v := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p == "" {
			p = os.Getenv(v)
		}
	}
	switch p {
	case "":
		return "http/protobuf", nil
	case "http/protobuf", "grpc":
		return p, nil
	default:
		return "", fmt.Errorf("OTLP protocol %q: want http/protobuf or grpc", p)
	}
}

// isURL says whether an endpoint is a URL rather than host:port.
func isURL(endpoint string) bool { return strings.Contains(endpoint, "://") }

// checkEndpoint checks an endpoint URL: http or https, with a host, and a
// path (if any) that is the collector's base, not a signal's.
func checkEndpoint(endpoint string) error {
	if !isURL(endpoint) {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("OTLP endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OTLP endpoint %q: want http://HOST:PORT or https://HOST:PORT", endpoint)
	}
	if p := strings.TrimSuffix(u.Path, "/"); strings.HasSuffix(p, "/v1/traces") || strings.HasSuffix(p, "/v1/metrics") {
		return fmt.Errorf("OTLP endpoint %q: give the collector's base URL (http://HOST:4318); probe adds /v1/traces and /v1/metrics", endpoint)
	}
	return nil
}

// signalURL is the URL of a signal's OTLP/HTTP path (v1/traces) under an
// endpoint URL, checked before: the endpoint is the collector's base, as
// OTEL_EXPORTER_OTLP_ENDPOINT is in the OTLP specification.
func signalURL(endpoint, path string) string {
	u, _ := url.Parse(endpoint) // checked before
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + path
	return u.String()
}

// traceExporter makes the OTLP span exporter of opts' protocol.
func traceExporter(ctx context.Context, opts Options) (sdktrace.SpanExporter, error) {
	proto, err := protocol(opts, "TRACES")
	if err != nil {
		return nil, err
	}
	if proto == "grpc" {
		return otlptracegrpc.New(ctx, exporterOptions(opts, "", otlptracegrpc.WithEndpointURL,
			otlptracegrpc.WithEndpoint, otlptracegrpc.WithInsecure, otlptracegrpc.WithHeaders)...)
	}
	return otlptracehttp.New(ctx, exporterOptions(opts, "v1/traces", otlptracehttp.WithEndpointURL,
		otlptracehttp.WithEndpoint, otlptracehttp.WithInsecure, otlptracehttp.WithHeaders)...)
}

// metricExporter makes the OTLP metric exporter of opts' protocol.
func metricExporter(ctx context.Context, opts Options) (sdkmetric.Exporter, error) {
	proto, err := protocol(opts, "METRICS")
	if err != nil {
		return nil, err
	}
	if proto == "grpc" {
		return otlpmetricgrpc.New(ctx, exporterOptions(opts, "", otlpmetricgrpc.WithEndpointURL,
			otlpmetricgrpc.WithEndpoint, otlpmetricgrpc.WithInsecure, otlpmetricgrpc.WithHeaders)...)
	}
	return otlpmetrichttp.New(ctx, exporterOptions(opts, "v1/metrics", otlpmetrichttp.WithEndpointURL,
		otlpmetrichttp.WithEndpoint, otlpmetrichttp.WithInsecure, otlpmetrichttp.WithHeaders)...)
}

// exporterOptions are the options of one OTLP exporter package (each has
// its own option type, with the same constructors): the endpoint's URL
// when it is one (with the signal's path appended, for HTTP, where path is
// not ""), else the endpoint as host:port, and opts' security and headers.
func exporterOptions[O any](opts Options, path string, withURL, withEndpoint func(string) O, insecure func() O,
	headers func(map[string]string) O) []O {
	var o []O
	switch {
	case isURL(opts.Endpoint) && path != "":
		o = append(o, withURL(signalURL(opts.Endpoint, path)))
	case isURL(opts.Endpoint):
		o = append(o, withURL(opts.Endpoint))
	case opts.Endpoint != "":
		o = append(o, withEndpoint(opts.Endpoint))
	}
	if opts.Insecure {
		o = append(o, insecure())
	}
	if len(opts.Headers) > 0 {
		o = append(o, headers(opts.Headers))
	}
	return o
}

// Attempt queues the trace of a for export, adds it to the metrics, and
// returns at once.
func (s *Sink) Attempt(a *engine.Attempt) error {
	if s.meters != nil {
		s.meters.record(a)
	}
	if s.tracer != nil {
		s.trace(a)
	}
	return nil
}

// trace queues the trace of a for export.
func (s *Sink) trace(a *engine.Attempt) {
	start := a.Started
	end := start.Add(a.Total)
	attrs := []attribute.KeyValue{attribute.String("probe.target", a.Target), attribute.Int("probe.seq", a.Seq)}
	if s.hosts != nil {
		if host, port, ok := s.hosts(a.Target); ok {
			attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(int(port)))
		}
	}
	if a.Address.IsValid() {
		attrs = append(attrs, semconv.NetworkPeerAddress(a.Address.Addr().String()),
			semconv.NetworkPeerPort(int(a.Address.Port())))
	}
	if f := a.Failure; f != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(string(f.Class)))
	}
	// A phase that sent a W3C traceparent (the http handshake's propagate)
	// reported its trace and span: the trace is the attempt's, the span the
	// phase's, so that the traced server's spans join under it.
	var want wantIDs
	for _, p := range a.Phases {
		if id, err := trace.TraceIDFromHex(str(p.Attrs["trace_id"])); err == nil {
			want.trace = id
		}
	}
	ctx, root := s.tracer.Start(context.WithValue(context.Background(), idsKey{}, want), "probe "+a.Target, trace.WithTimestamp(start),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	if f := a.Failure; f != nil {
		root.SetStatus(codes.Error, f.Phase+": "+f.Message)
	}
	for _, p := range a.Phases {
		pattrs := append([]attribute.KeyValue{attribute.String("probe.plugin", p.Plugin)}, phaseAttrs(a, &p, s.hosts)...)
		if f := a.Failure; f != nil && !p.OK && f.Phase == p.Name {
			pattrs = append(pattrs, semconv.ErrorTypeKey.String(string(f.Class)))
		}
		pstart := start.Add(p.Start)
		pctx := ctx
		if id, err := trace.SpanIDFromHex(str(p.Attrs["span_id"])); err == nil && want.trace.IsValid() {
			pctx = context.WithValue(ctx, idsKey{}, wantIDs{span: id})
		}
		_, span := s.tracer.Start(pctx, p.Name, trace.WithTimestamp(pstart), trace.WithAttributes(pattrs...))
		if f := a.Failure; f != nil && !p.OK {
			span.SetStatus(codes.Error, f.Message)
		}
		span.End(trace.WithTimestamp(pstart.Add(p.Duration)))
	}
	root.End(trace.WithTimestamp(end))
}

// str is v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// wantIDs are the IDs a span must have, where valid: a context's value
// under idsKey.
type wantIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type idsKey struct{}

// ids generates random IDs, but those a span's context asks for.
type ids struct{}

func (ids) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	want, _ := ctx.Value(idsKey{}).(wantIDs)
	tid := want.trace
	if !tid.IsValid() {
		_, _ = rand.Read(tid[:]) // crypto/rand never fails
	}
	return tid, ids{}.NewSpanID(ctx, tid)
}

func (ids) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	want, _ := ctx.Value(idsKey{}).(wantIDs)
	sid := want.span
	if !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}

// phaseAttrs maps the attributes of phase p, as the built-in plugins name
// them, to the semantic conventions'.
func phaseAttrs(a *engine.Attempt, p *engine.Phase, hosts func(string) (string, uint16, bool)) []attribute.KeyValue {
	var out []attribute.KeyValue
	if p.Name == "resolve" && hosts != nil {
		if host, _, ok := hosts(a.Target); ok {
			out = append(out, semconv.DNSQuestionName(host))
		}
	}
	if p.Name == "connect" && a.Address.IsValid() {
		out = append(out, semconv.NetworkPeerAddress(a.Address.Addr().String()),
			semconv.NetworkPeerPort(int(a.Address.Port())))
	}
	if v, ok := p.Attrs["version"].(string); ok && strings.HasPrefix(v, "TLS ") {
		out = append(out, semconv.TLSProtocolNameTLS, semconv.TLSProtocolVersion(strings.TrimPrefix(v, "TLS ")))
	}
	if v, ok := p.Attrs["cert_not_after"].(string); ok {
		out = append(out, semconv.TLSServerNotAfter(v))
	}
	if v, ok := p.Attrs["status"].(int); ok && p.Name == "http" {
		out = append(out, semconv.HTTPResponseStatusCode(v))
	}
	return out
}

// Flush does nothing: the batch processor exports on its own schedule, and
// waiting for a collector here would delay the next round of probing.
func (s *Sink) Flush() error { return nil }

// Close exports the spans still queued and the metrics, waiting at most 5s, stops the
// export and logs what was dropped: an export that failed is the
// collector's trouble, not the run's, so Close never fails. A stream of a
// schedule (a nil result) leaves the sink open: it outlives the stream, as
// `probe serve` keeps it across reloads; its owner calls Shutdown.
func (s *Sink) Close(res *engine.Result) error {
	if res == nil {
		return nil
	}
	if err := s.Shutdown(); err != nil {
		s.log.Warn("otel export", "error", err)
	}
	return nil
}

// Shutdown exports the spans still queued and the metrics, waiting at most 5s, stops the
// export, and logs what was dropped.
func (s *Sink) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Both signals share the 5s: one's dead collector must not leave the
	// other no time.
	var wg sync.WaitGroup
	var traceErr, metricErr error
	if s.provider != nil {
		wg.Go(func() { traceErr = s.provider.Shutdown(ctx) })
	}
	if s.meters != nil {
		wg.Go(func() { metricErr = s.meters.provider.Shutdown(ctx) })
	}
	wg.Wait()
	exported, queueFull, failed := s.Counts()
	if queueFull+failed > 0 {
		s.log.Warn("otel export: spans dropped", "exported", exported, "queue_full", queueFull, "export_failed", failed)
	}
	if m := s.meters; m != nil && m.exports.failed.Load() > 0 {
		s.log.Warn("otel export: metric exports failed", "ok", m.exports.ok.Load(), "failed", m.exports.failed.Load())
	}
	if err := errors.Join(traceErr, metricErr); err != nil {
		return fmt.Errorf("stop the otel export: %w", err)
	}
	return nil
}

// Counts says how many spans were exported, dropped for a full queue, and
// lost in failed exports.
func (s *Sink) Counts() (exported, queueFull, failed uint64) {
	return s.gate.exported.Load(), s.gate.dropped.Load(), s.gate.failed.Load()
}

var (
	exportedDesc = prometheus.NewDesc("probe_otel_spans_exported_total",
		"Spans the OTLP collector accepted.", nil, nil)
	droppedDesc = prometheus.NewDesc("probe_otel_spans_dropped_total",
		"Spans never exported: their queue was full (reason queue_full) or their export failed (export_failed).",
		[]string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	ch <- exportedDesc
	ch <- droppedDesc
	ch <- metricExportsDesc
}

// Collect implements prometheus.Collector.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	exported, queueFull, failed := s.Counts()
	ch <- prometheus.MustNewConstMetric(exportedDesc, prometheus.CounterValue, float64(exported))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(queueFull), "queue_full")
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(failed), "export_failed")
	if m := s.meters; m != nil {
		ch <- prometheus.MustNewConstMetric(metricExportsDesc, prometheus.CounterValue, float64(m.exports.ok.Load()), "ok")
		ch <- prometheus.MustNewConstMetric(metricExportsDesc, prometheus.CounterValue, float64(m.exports.failed.Load()), "failed")
	}
}

// gate sits before and after the batch span processor: its processor
// lets a span in only while fewer than size are queued or being exported,
// and counts the others as dropped; its exporter counts the spans each
// export took out, and those whose export failed.
type gate struct {
	size    int64
	pending atomic.Int64 // spans let in, not yet out of an export

	exported, dropped, failed atomic.Uint64
}

// gateIn is the gate as the provider's span processor, in front of next.
type gateIn struct {
	*gate
	next sdktrace.SpanProcessor
}

func (g gateIn) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (g gateIn) OnEnd(s sdktrace.ReadOnlySpan) {
	if g.pending.Add(1) > g.size {
		g.pending.Add(-1)
		g.dropped.Add(1)
		return
	}
	g.next.OnEnd(s)
}

func (g gateIn) Shutdown(ctx context.Context) error { return g.next.Shutdown(ctx) }

func (g gateIn) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

// gateOut is the gate as the batch processor's exporter, in front of exp.
type gateOut struct {
	*gate
	exp sdktrace.SpanExporter
}

func (g gateOut) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := g.exp.ExportSpans(ctx, spans)
	g.pending.Add(-int64(len(spans)))
	if err != nil {
		g.failed.Add(uint64(len(spans)))
		return err
	}
	g.exported.Add(uint64(len(spans)))
	return nil
}

func (g gateOut) Shutdown(ctx context.Context) error { return g.exp.Shutdown(ctx) }

// Interface guards.
var (
	_ sink.Sink              = (*Sink)(nil)
	_ prometheus.Collector   = (*Sink)(nil)
	_ sdktrace.SpanProcessor = gateIn{}
	_ sdktrace.SpanExporter  = gateOut{}
)

package otel

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/report"
)

// meters records attempts into the OTLP metrics, which a periodic reader
// exports on its own goroutine: recording only adds to sums in memory, and
// the instruments are cumulative, so an export that fails loses nothing
// that the next one does not carry.
//
// The metrics are those of `probe serve`'s /metrics, named so that a
// collector's Prometheus translation gives the same names and labels:
//
//	probe.attempt.phase.duration (s)  histogram of successful phases {target, phase}
//	probe.attempt.duration (s)        histogram of successful attempts {target}
//	probe.attempts                    counter of attempts {target}
//	probe.attempt.failures            counter of failed attempts {target, phase, class}
//	probe.success                     gauge, 1 when the target's latest attempt succeeded {target}
type meters struct {
	provider *sdkmetric.MeterProvider
	phases   metric.Float64Histogram
	totals   metric.Float64Histogram
	attempts metric.Int64Counter
	failures metric.Int64Counter
	success  metric.Int64Gauge
	exports  *countingExporter
}

// newMeters returns the metrics of res, exported by exp every
// OTEL_METRIC_EXPORT_INTERVAL (60s by default).
func newMeters(res *resource.Resource, exp sdkmetric.Exporter) (*meters, error) {
	counted := &countingExporter{Exporter: exp}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(counted)))
	m := &meters{provider: provider, exports: counted}
	meter := provider.Meter("github.com/probe-dev/probe/core/otel")
	var err error
	// The buckets are /metrics', so that quantiles agree however they came.
	buckets := metric.WithExplicitBucketBoundaries(report.Buckets...)
	if m.phases, err = meter.Float64Histogram("probe.attempt.phase.duration", metric.WithUnit("s"), buckets,
		metric.WithDescription("How long successful phases ran.")); err != nil {
		return nil, fmt.Errorf("otel metric: %w", err)
	}
	if m.totals, err = meter.Float64Histogram("probe.attempt.duration", metric.WithUnit("s"), buckets,
		metric.WithDescription("How long successful attempts took.")); err != nil {
		return nil, fmt.Errorf("otel metric: %w", err)
	}
	if m.attempts, err = meter.Int64Counter("probe.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts finished.")); err != nil {
		return nil, fmt.Errorf("otel metric: %w", err)
	}
	if m.failures, err = meter.Int64Counter("probe.attempt.failures", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts failed, by the phase and class of their failure.")); err != nil {
		return nil, fmt.Errorf("otel metric: %w", err)
	}
	if m.success, err = meter.Int64Gauge("probe.success",
		metric.WithDescription("Whether the target's latest attempt succeeded: every phase of it was ok.")); err != nil {
		return nil, fmt.Errorf("otel metric: %w", err)
	}
	return m, nil
}

// record adds attempt a to the metrics.
func (m *meters) record(a *engine.Attempt) {
	ctx := context.Background()
	target := attribute.String("target", a.Target)
	only := metric.WithAttributes(target)
	m.attempts.Add(ctx, 1, only)
	for _, p := range a.Phases {
		if p.OK {
			m.phases.Record(ctx, p.Duration.Seconds(), metric.WithAttributes(target, attribute.String("phase", p.Name)))
		}
	}
	success := int64(0)
	if a.OK {
		success = 1
		m.totals.Record(ctx, a.Total.Seconds(), only)
	}
	m.success.Record(ctx, success, only)
	if f := a.Failure; f != nil {
		m.failures.Add(ctx, 1, metric.WithAttributes(target, attribute.String("phase", f.Phase),
			attribute.String("class", string(f.Class))))
	}
}

// countingExporter counts the exports of metrics that succeeded and
// failed.
type countingExporter struct {
	sdkmetric.Exporter
	ok, failed atomic.Uint64
}

func (c *countingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := c.Exporter.Export(ctx, rm)
	if err != nil {
		c.failed.Add(1)
		return err
	}
	c.ok.Add(1)
	return nil
}

var metricExportsDesc = prometheus.NewDesc("probe_otel_metric_exports_total",
	"Exports of the OTLP metrics, by result (ok or failed); a failed one loses nothing, the next carries the cumulative values.",
	[]string{"result"}, nil)

package report

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sink"
)

// whole is a sink of a whole run: it writes the run when closed with its
// result, and nothing for a stream of a schedule (a nil result).
type whole func(res *engine.Result) error

func (whole) Attempt(*engine.Attempt) error { return nil }
func (whole) Flush() error                  { return nil }

func (f whole) Close(res *engine.Result) error {
	if res == nil {
		return nil
	}
	return f(res)
}

// TableSink returns a sink that writes the run's Table to w when closed. It
// reads the attempts from the result: the run must keep them.
func TableSink(w io.Writer) sink.Sink {
	return whole(func(res *engine.Result) error { return Table(w, res) })
}

// JSONSink returns a sink that writes the run, of the pipeline file named
// file, as one JSON document to w as the run goes (JSONDocument), with the
// vantage when it is not empty. It reads the targets from the engine as
// each is done, their attempts with them: the run must keep a target's
// attempts until it is done, and need keep no target's result.
func JSONSink(w io.Writer, file, vantage string) sink.Sink {
	return NewJSONDocument(w, file, vantage)
}

// WaterfallSink returns a sink that draws the run's Waterfall on w when
// closed, in colour when color is set. It reads the attempts from the
// result: the run must keep them.
func WaterfallSink(w io.Writer, color bool) sink.Sink {
	return whole(func(res *engine.Result) error { return Waterfall(w, res, color) })
}

// PrometheusSink accumulates the attempts it is given into Metrics and
// writes them in the Prometheus text format when closed, for
// node_exporter's textfile collector: what `probe serve` exposes on
// /metrics for scheduled targets, for this one run. It needs no attempt in
// the result.
type PrometheusSink struct {
	w       io.Writer
	m       *Metrics
	vantage string
	also    []Registrar
}

// NewPrometheusSink returns a PrometheusSink writing to w, every series
// labelled vantage="..." when vantage is not empty.
func NewPrometheusSink(w io.Writer, vantage string) *PrometheusSink {
	return &PrometheusSink{w: w, m: NewMetrics(Classic, vantage), vantage: vantage}
}

// Registrar registers collectors in a registry.
type Registrar interface {
	Register(reg prometheus.Registerer) error
}

// Also has Close write r's collectors too, with the vantage label.
func (p *PrometheusSink) Also(r Registrar) { p.also = append(p.also, r) }

// Attempt adds a to the metrics.
func (p *PrometheusSink) Attempt(a *engine.Attempt) error {
	p.m.Add(a)
	return nil
}

// Flush does nothing: the metrics are written when the sink is closed.
func (p *PrometheusSink) Flush() error { return nil }

// Close writes the metrics.
func (p *PrometheusSink) Close(*engine.Result) error {
	reg := prometheus.NewPedanticRegistry()
	for _, r := range p.also {
		if err := r.Register(VantageRegisterer(reg, p.vantage)); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	families, err := Merge(reg, p.m).Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(p.w, mf); err != nil {
			return err
		}
	}
	return nil
}

// VantageRegisterer returns reg, labelling every series registered through
// it vantage="..." when vantage is not empty (DESIGN §11: the label is on
// every series when set, and absent, not empty, when not).
func VantageRegisterer(reg prometheus.Registerer, vantage string) prometheus.Registerer {
	if vantage == "" {
		return reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"vantage": vantage}, reg)
}

// Interface guards.
var (
	_ sink.Sink       = whole(nil)
	_ sink.Sink       = (*PrometheusSink)(nil)
	_ sink.Sink       = (*JSONLines)(nil)
	_ sink.TargetSink = (*JSONDocument)(nil)
	_ sink.Sink       = (*Metrics)(nil)

	_ prometheus.Gatherer = (*Metrics)(nil)
)

package httphandshake

import (
	"net/http"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestPropagate: with propagate = true, a server instrumented with otelhttp
// records its span as a child of the span the phase reports (trace_id,
// span_id), in a sampled trace; without it the server starts a trace of its
// own and the phase reports none.
func TestPropagate(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	handler := otelhttp.NewHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "server",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
	s := startServer(t, false, handler.ServeHTTP)
	for _, propagate := range []bool{true, false} {
		h, err := newHandshaker(t, map[string]cty.Value{"propagate": cty.BoolVal(propagate)})
		if err != nil {
			t.Fatal(err)
		}
		before := len(rec.Ended())
		p := probe(t, t.Context(), h, s, "api.probe.test").Phases[0]
		ended := rec.Ended()
		if len(ended) != before+1 {
			t.Fatalf("propagate %v: the server recorded %d spans, want 1", propagate, len(ended)-before)
		}
		got := ended[len(ended)-1]
		traceID, _ := p.Attrs["trace_id"].(string)
		spanID, _ := p.Attrs["span_id"].(string)
		if !propagate {
			if got.Parent().IsValid() || traceID != "" || spanID != "" {
				t.Errorf("without propagate: server span's parent %v, phase trace_id %q span_id %q; want none", got.Parent(), traceID, spanID)
			}
			continue
		}
		if parent := got.Parent(); !parent.IsRemote() || parent.TraceID().String() != traceID ||
			parent.SpanID().String() != spanID || !parent.IsSampled() || len(traceID) != 32 || len(spanID) != 16 {
			t.Errorf("server span's parent %s/%s (remote %v, sampled %v); phase trace_id %q span_id %q",
				parent.TraceID(), parent.SpanID(), parent.IsRemote(), parent.IsSampled(), traceID, spanID)
		}
		if got.SpanContext().TraceID().String() != traceID {
			t.Errorf("server span in trace %s, want the phase's %s", got.SpanContext().TraceID(), traceID)
		}
	}
}

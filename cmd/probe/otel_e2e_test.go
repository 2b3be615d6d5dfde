package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/probe-dev/probe/core/report"
)

// jaegerVersion is the Jaeger that .ci/deps builds from the Go module proxy
// into the user's cache directory.
const jaegerVersion = "v1.75.0"

// jaeger is a Jaeger started by a test: OTLP over HTTP on otlp, its query
// API on query, and the metrics it received for Prometheus to scrape on
// metrics.
type jaeger struct{ otlp, query, metrics string }

// startJaeger runs Jaeger with in-memory storage on free loopback ports,
// stopped at the end of the test (its log shown if the test failed). Jaeger
// is an OpenTelemetry Collector distribution: its metrics pipeline hands
// what the OTLP receiver gets to the collector's prometheus exporter (the
// one Jaeger's service performance monitoring uses), configured as
// docs/opentelemetry.md says.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "probe-tools", "jaeger-"+jaegerVersion, "jaeger")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("this test needs Jaeger %s built at %s: %v (.ci/deps builds it; make test runs .ci/deps)", jaegerVersion, bin, err)
	}
	j := &jaeger{otlp: fmt.Sprintf("127.0.0.1:%d", freePort(t)), query: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		metrics: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	dir := t.TempDir()
	config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
    timeout: 50ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
  prometheus:
    endpoint: %s
    resource_to_telemetry_conversion:
      enabled: true
`, j.query, freePort(t), j.otlp, j.metrics)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", path)
	log, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("jaeger log:\n%s", out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + j.query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger did not answer on %s within 20s: %v", j.query, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jaegerTrace is a trace as Jaeger's HTTP query API answers it.
type jaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64 `json:"startTime"` // µs since the epoch
		Duration  int64 `json:"duration"`  // µs
		Tags      []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		Tags        []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"processes"`
}

// traces asks Jaeger for the traces of service until there are n.
func (j *jaeger) traces(t *testing.T, service string, n int) []jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var answer struct{ Data []jaegerTrace }
		now := time.Now()
		resp, err := http.Get(fmt.Sprintf("http://%s/api/traces?service=%s&limit=1000&start=%d&end=%d",
			j.query, service, now.Add(-time.Hour).UnixMicro(), now.Add(time.Minute).UnixMicro()))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("decode Jaeger's traces: %v", err)
		}
		if len(answer.Data) >= n || time.Now().After(deadline) {
			if len(answer.Data) != n {
				t.Fatalf("Jaeger has %d traces of service %s, want %d", len(answer.Data), service, n)
			}
			return answer.Data
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// usDiff is how far apart, in whole microseconds, Jaeger's µs and the
// JSON's ms are. Both come from the same nanoseconds: the JSON rounds them
// to the µs, Jaeger truncates them (and an offset is the difference of two
// truncated times), so the same measurement is at most 1µs apart.
func usDiff(jaegerUS int64, jsonMS float64) int64 {
	d := jaegerUS - int64(math.Round(jsonMS*1000))
	if d < 0 {
		return -d
	}
	return d
}

// TestOTLPTraces: the real binary probes the lab with -o json and exports
// every attempt over OTLP to a real Jaeger; read back through Jaeger's query
// API, each attempt is a trace whose root span and phase spans start and
// last what the JSON says, to the microsecond, with the phases the root's
// children, the semantic conventions' attributes, the vantage on the
// resource, and status error where the attempt failed.
func TestOTLPTraces(t *testing.T) {
	t.Parallel()
	j := startJaeger(t)
	r := probe(t, nil, labArgs("-o", "json", "--vantage", "lab-vantage", "--otlp-endpoint", "http://"+j.otlp)...)
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	attempts := map[string]report.AttemptJSON{} // by target and seq
	hosts := map[string]report.TargetJSON{}
	for _, tj := range doc.Targets {
		hosts[tj.Name] = tj
		for _, a := range tj.Attempts {
			attempts[tj.Name+"#"+strconv.Itoa(a.Seq)] = a
		}
	}
	traces := j.traces(t, "probe", len(attempts))
	seen := map[string]bool{}
	for _, tr := range traces {
		// The root: the span without a parent.
		rootIdx := -1
		for i, s := range tr.Spans {
			if len(s.References) == 0 {
				if rootIdx >= 0 {
					t.Fatalf("trace %s has two roots", tr.TraceID)
				}
				rootIdx = i
			}
		}
		if rootIdx < 0 {
			t.Fatalf("trace %s has no root", tr.TraceID)
		}
		root := tr.Spans[rootIdx]
		tags := func(i int) map[string]any {
			m := map[string]any{}
			for _, kv := range tr.Spans[i].Tags {
				m[kv.Key] = kv.Value
			}
			return m
		}
		rt := tags(rootIdx)
		target, _ := rt["probe.target"].(string)
		seq, _ := rt["probe.seq"].(float64)
		key := target + "#" + strconv.Itoa(int(seq))
		a, ok := attempts[key]
		if !ok || seen[key] {
			t.Errorf("trace %s: root names attempt %s, which the JSON lacks or another trace has", tr.TraceID, key)
			continue
		}
		seen[key] = true
		proc := tr.Processes[root.ProcessID]
		vantage := ""
		for _, kv := range proc.Tags {
			if kv.Key == "probe.vantage" {
				vantage, _ = kv.Value.(string)
			}
		}
		if proc.ServiceName != "probe" || vantage != "lab-vantage" {
			t.Errorf("%s: service %q, probe.vantage %q; want probe, lab-vantage", key, proc.ServiceName, vantage)
		}
		if root.StartTime != a.StartedAt.UnixMicro() {
			t.Errorf("%s: root starts %dµs, the JSON at %s", key, root.StartTime, a.StartedAt.Format(time.RFC3339Nano))
		}
		if d := usDiff(root.Duration, a.TotalMS); d > 1 {
			t.Errorf("%s: root lasts %dµs, the JSON %.3fms", key, root.Duration, a.TotalMS)
		}
		tj := hosts[target]
		if rt["server.address"] != tj.Host || rt["server.port"] != float64(tj.Port) {
			t.Errorf("%s: server.address %v server.port %v, want %s %d", key, rt["server.address"], rt["server.port"], tj.Host, tj.Port)
		}
		if a.Address != nil && rt["network.peer.address"] != "127.0.0.1" {
			t.Errorf("%s: network.peer.address %v, want 127.0.0.1", key, rt["network.peer.address"])
		}
		if f := a.Failure; f != nil {
			if rt["error.type"] != string(f.Class) || rt["otel.status_code"] != "ERROR" {
				t.Errorf("%s failed with %s: root error.type %v, status %v", key, f.Class, rt["error.type"], rt["otel.status_code"])
			}
		} else if _, has := rt["error.type"]; has || rt["otel.status_code"] == "ERROR" {
			t.Errorf("%s succeeded: root error.type %v, status %v", key, rt["error.type"], rt["otel.status_code"])
		}
		// The phases: each a child of the root, as the JSON measured them.
		if len(tr.Spans) != 1+len(a.Phases) {
			t.Errorf("%s: %d spans, want the root and %d phases", key, len(tr.Spans), len(a.Phases))
			continue
		}
		for _, p := range a.Phases {
			i := -1
			for k, s := range tr.Spans {
				if s.OperationName == p.Phase {
					i = k
				}
			}
			if i < 0 {
				t.Errorf("%s: no span of phase %s", key, p.Phase)
				continue
			}
			s := tr.Spans[i]
			if len(s.References) != 1 || s.References[0].RefType != "CHILD_OF" || s.References[0].SpanID != root.SpanID {
				t.Errorf("%s: phase %s's references %+v, want a child of the root %s", key, p.Phase, s.References, root.SpanID)
			}
			if d := usDiff(s.StartTime-root.StartTime, p.StartMS); d > 1 {
				t.Errorf("%s: phase %s starts %dµs into the attempt, the JSON %.3fms", key, p.Phase, s.StartTime-root.StartTime, p.StartMS)
			}
			if d := usDiff(s.Duration, p.DurationMS); d > 1 {
				t.Errorf("%s: phase %s lasts %dµs, the JSON %.3fms", key, p.Phase, s.Duration, p.DurationMS)
			}
			st := tags(i)
			if errored := st["otel.status_code"] == "ERROR"; errored == p.OK {
				t.Errorf("%s: phase %s ok %v, span status %v", key, p.Phase, p.OK, st["otel.status_code"])
			}
			switch p.Phase {
			case "resolve":
				if st["dns.question.name"] != tj.Host {
					t.Errorf("%s: dns.question.name %v, want %s", key, st["dns.question.name"], tj.Host)
				}
			case "tls":
				if v, ok := p.Attrs["cert_not_after"]; ok && st["tls.server.not_after"] != v {
					t.Errorf("%s: tls.server.not_after %v, want %v", key, st["tls.server.not_after"], v)
				}
				if p.OK && st["tls.protocol.version"] != "1.3" {
					t.Errorf("%s: tls.protocol.version %v, want 1.3", key, st["tls.protocol.version"])
				}
			}
		}
	}
	if len(seen) != len(attempts) {
		t.Errorf("%d of %d attempts have a trace", len(seen), len(attempts))
	}
	spans, failed := 0, 0
	for _, tr := range traces {
		spans += len(tr.Spans)
	}
	for _, a := range attempts {
		if a.Failure != nil {
			failed++
		}
	}
	t.Logf("checked %d traces (%d of failed attempts), %d spans", len(traces), failed, spans)
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, j, doc) })
	t.Run("propagate", func(t *testing.T) { checkPropagate(t, j) })
}

// checkMetrics: the OTLP metrics of the run of doc, which Jaeger's
// prometheus exporter hands to a real Prometheus scraping it with the job
// of docs/opentelemetry.md, have the vantage label and the values of the
// JSON: per target, as many successful connect phases as the JSON has,
// their sum to the JSON's within half a microsecond each (the JSON rounds
// each duration to the microsecond; OTLP has the nanoseconds), and
// probe_success the latest attempt's. Then a probe serve of a schedule
// pushes its metrics while it runs.
func checkMetrics(t *testing.T, j *jaeger, doc *report.Document) {
	text, err := os.ReadFile(filepath.Join("..", "..", "docs", "opentelemetry.md"))
	if err != nil {
		t.Fatal(err)
	}
	job := yamlBlock(t, text, "job_name: probe-otlp")
	if !strings.Contains(job, "collector:8889") {
		t.Fatalf("docs/opentelemetry.md's scrape job no longer names collector:8889; update this test:\n%s", job)
	}
	prom := startPrometheus(t, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"+
		strings.ReplaceAll(job, "collector:8889", j.metrics), nil)
	type want struct {
		count   int
		sum     float64
		success float64
	}
	wants := map[string]*want{}
	for _, tj := range doc.Targets {
		w := &want{}
		last := 0
		for _, a := range tj.Attempts {
			for _, p := range a.Phases {
				if p.Phase == "connect" && p.OK {
					w.count++
					w.sum += p.DurationMS / 1000
				}
			}
			if a.Seq > last {
				last, w.success = a.Seq, 0
				if a.OK {
					w.success = 1
				}
			}
		}
		wants[tj.Name] = w
	}
	byTarget := func(s []sample) map[string]float64 {
		m := map[string]float64{}
		for _, x := range s {
			m[x.labels["target"]] = x.value
		}
		return m
	}
	success := byTarget(prom.eventually(`probe_success{vantage="lab-vantage"}`, len(wants)))
	counts := byTarget(prom.eventually(`probe_attempt_phase_duration_seconds_count{phase="connect",vantage="lab-vantage"}`, 1))
	sums := byTarget(prom.eventually(`probe_attempt_phase_duration_seconds_sum{phase="connect",vantage="lab-vantage"}`, 1))
	checked := 0
	for name, w := range wants {
		if success[name] != w.success {
			t.Errorf("%s: probe_success %v, the JSON's latest attempt %v", name, success[name], w.success)
		}
		if w.count == 0 {
			if _, has := counts[name]; has {
				t.Errorf("%s: no successful connect in the JSON, yet a histogram of %v", name, counts[name])
			}
			continue
		}
		checked++
		if counts[name] != float64(w.count) {
			t.Errorf("%s: connect histogram counts %v, the JSON has %d successful connects", name, counts[name], w.count)
		}
		if tol := float64(w.count)*0.5e-6 + 1e-9; math.Abs(sums[name]-w.sum) > tol {
			t.Errorf("%s: connect histogram sums %.9fs, the JSON %.9fs (tolerance %.9fs)", name, sums[name], w.sum, tol)
		}
	}
	if checked == 0 {
		t.Fatal("no target of the run had a successful connect")
	}
	t.Logf("checked the connect histograms of %d targets and probe_success of %d through PromQL", checked, len(wants))

	// probe serve of a schedule pushes while it runs, every
	// OTEL_METRIC_EXPORT_INTERVAL (here 300ms), and counts its exports on
	// /metrics.
	file := serveFile(t, "")
	srv := startServeWith(t, filepath.Base(file), filepath.Dir(file),
		`OTEL_METRIC_EXPORT_INTERVAL=300 exec "$0" "$@" --vantage serve-vantage --otlp-endpoint http://`+j.otlp)
	prom.until(`probe_success{vantage="serve-vantage"}`, `api 1, broken[expired] 0`, func(s []sample) bool {
		m := byTarget(s)
		return len(s) == 2 && m["api"] == 1 && m["broken[expired]"] == 0
	})
	attempts := func() float64 {
		return byTarget(prom.eventually(`probe_attempts_total{vantage="serve-vantage", target="api"}`, 1))["api"]
	}
	first := attempts()
	prom.until(`probe_attempts_total{vantage="serve-vantage", target="api"}`, fmt.Sprintf("more than %v", first),
		func(s []sample) bool { return len(s) == 1 && s[0].value > first })
	_, body := get(t, "http://"+srv.addr+"/metrics")
	m := regexp.MustCompile(`(?m)^probe_otel_metric_exports_total\{result="ok",vantage="serve-vantage"\} (\d+)$`).FindStringSubmatch(body)
	if m == nil || m[1] == "0" {
		t.Errorf("probe serve's /metrics counts no metric export:\n%s", regexp.MustCompile(`(?m)^probe_otel.*$`).FindAllString(body, -1))
	}
}

// checkPropagate: an http handshake with propagate = true against a server
// instrumented with otelhttp, exporting to the same Jaeger: the server's
// span is in the attempt's trace, a child of the probe's http span.
func checkPropagate(t *testing.T, j *jaeger) {
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL("http://"+j.otlp+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "traced-server"))))
	defer tp.Shutdown(context.Background())
	srv := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "serve",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{})))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	file := writeFile(t, "traced.hcl", labHeader("1s")+fmt.Sprintf(`
handshake "traced" {
  plugin    = "http"
  propagate = true
}
pipeline "traced" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.traced]
}
target "traced" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.traced
}
`, port))
	r := probe(t, nil, "run", file, "-o", "json", "--otlp-endpoint", "http://"+j.otlp)
	wantExit(t, r, 0)
	a := decodeDoc(t, r.stdout).Targets[0].Attempts[0]
	phase := a.Phases[len(a.Phases)-1]
	traceID, _ := phase.Attrs["trace_id"].(string)
	spanID, _ := phase.Attrs["span_id"].(string)
	// The server's span and the probe's come apart: ask until both are in.
	var (
		traces           []jaegerTrace
		probeHTTP, child bool
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		traces = j.traces(t, "traced-server", 1)
		probeHTTP, child = false, false
		for _, s := range traces[0].Spans {
			switch {
			case s.OperationName == "http" && s.SpanID == spanID:
				probeHTTP = true
			case traces[0].Processes[s.ProcessID].ServiceName == "traced-server":
				child = len(s.References) == 1 && s.References[0].SpanID == spanID
			}
		}
		if probeHTTP && child || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if traces[0].TraceID != traceID || !probeHTTP || !child {
		t.Errorf("trace %s (the phase's trace_id %s): the probe's http span %s there %v, the server's span its child %v",
			traces[0].TraceID, traceID, spanID, probeHTTP, child)
	}
}

package report

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sink"
	"github.com/probe-dev/probe/core/stats"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the output the tests get")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got); go test -update rewrites it:\n%s", path, diff)
	}
}

// run builds a run of three targets the way the engine aggregates them:
// api, https, two attempts ok; web, http, a status failure; db, tcp,
// refused.
func run() *engine.Result {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	api := func(seq int, scale time.Duration) engine.Attempt {
		return engine.Attempt{Target: "api", Seq: seq, OK: true, Started: started.Add(time.Duration(seq) * time.Second),
			Address: netip.MustParseAddrPort("127.0.0.1:8443"), Total: scale * 2600, Overhead: scale * 60,
			Phases: []engine.Phase{
				{Name: "resolve", Plugin: "dns-miekg", Duration: scale * 210, OK: true,
					Attrs: map[string]any{"addresses": []string{"127.0.0.1"}, "rcode": "NOERROR"}},
				{Name: "connect", Plugin: "dial-tcp", Start: scale * 230, Duration: scale * 90, OK: true},
				{Name: "tls", Plugin: "tls", Start: scale * 340, Duration: scale * 1500, OK: true,
					Attrs: map[string]any{"version": "TLS 1.3", "alpn": "h2", "cert_not_after": "2027-01-01T00:00:00Z", "cert_days_left": 40}},
				{Name: "http", Plugin: "http", Start: scale * 1860, Duration: scale * 740, OK: true,
					Attrs: map[string]any{"status": 200, "version": "HTTP/2.0", "ttfb_ms": 0.69, "transfer_ms": 0.05}},
			}}
	}
	web := engine.Attempt{Target: "web", Seq: 1, Started: started,
		Address: netip.MustParseAddrPort("127.0.0.1:8080"), Total: us(5400), Overhead: us(40),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Duration: us(10), OK: true},
			{Name: "connect", Plugin: "dial-tcp", Start: us(20), Duration: us(80), OK: true},
			{Name: "http", Plugin: "http", Start: us(110), Duration: us(5290),
				Attrs: map[string]any{"status": 503, "version": "HTTP/1.1"}},
		},
		Failure: &sdk.Failure{Phase: "http", Class: "http.status", Message: "http GET http://127.0.0.1:8080/: status 503, want 200-399"}}
	db := engine.Attempt{Target: "db", Seq: 1, Started: started,
		Address: netip.MustParseAddrPort("127.0.0.1:1"), Total: us(300), Overhead: us(20),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Duration: us(10), OK: true},
			{Name: "connect", Plugin: "dial-tcp", Start: us(20), Duration: us(270)},
		},
		Failure: &sdk.Failure{Phase: "connect", Class: sdk.ClassTCPRefused, Message: "dial 127.0.0.1:1: connection refused"}}

	res := &engine.Result{Started: started, Duration: 12500 * time.Microsecond}
	all := newAggregate()
	for _, tt := range []struct {
		name, host, pipeline string
		port                 uint16
		attempts             []engine.Attempt
	}{
		{"api", "api.probe.test", "https", 8443, []engine.Attempt{api(1, time.Microsecond), api(2, 2*time.Microsecond)}},
		{"web", "web.probe.test", "http", 8080, []engine.Attempt{web}},
		{"db", "127.0.0.1", "tcp", 1, []engine.Attempt{db}},
	} {
		g := newAggregate()
		tr := &engine.TargetResult{Target: &engine.Target{Name: tt.name, Host: tt.host, Port: tt.port,
			Pipeline: &engine.Pipeline{Name: tt.pipeline}}, Attempts: tt.attempts, OK: true}
		for i := range tt.attempts {
			g.add(&tt.attempts[i])
			all.add(&tt.attempts[i])
			tr.OK = tr.OK && tt.attempts[i].OK
		}
		tr.Phases, tr.Stats, tr.FailuresByClass = g.result()
		res.Targets = append(res.Targets, tr)
		res.Summary.Targets++
		if tr.OK {
			res.Summary.OK++
		} else {
			res.Summary.Failed++
		}
	}
	res.Phases, res.Stats, res.Summary.FailuresByClass = all.result()
	return res
}

// aggregate mirrors the engine's aggregation of attempts.
type aggregate struct {
	order   []string
	accs    map[string]*stats.Accumulator
	byClass map[sdk.Class]int
}

func newAggregate() *aggregate {
	return &aggregate{accs: map[string]*stats.Accumulator{}, byClass: map[sdk.Class]int{}}
}

func (g *aggregate) acc(name string) *stats.Accumulator {
	if g.accs[name] == nil {
		g.accs[name] = &stats.Accumulator{}
		g.order = append(g.order, name)
	}
	return g.accs[name]
}

func (g *aggregate) add(a *engine.Attempt) {
	for _, p := range a.Phases {
		g.acc(p.Name).Add(p.Duration, p.OK)
	}
	if a.Failure != nil {
		g.byClass[a.Failure.Class]++
	}
	total := g.accs[engine.TotalPhase]
	if total == nil {
		total = &stats.Accumulator{}
		g.accs[engine.TotalPhase] = total
	}
	total.Add(a.Total, a.OK)
}

func (g *aggregate) result() ([]string, map[string]stats.Summary, map[sdk.Class]int) {
	out := map[string]stats.Summary{}
	for name, a := range g.accs {
		out[name] = a.Summary()
	}
	return append(g.order, engine.TotalPhase), out, g.byClass
}

// feed hands s every attempt of res, target by target, then closes it with
// res, as a stream of the run would.
func feed(s sink.Sink, res *engine.Result) error {
	for _, tr := range res.Targets {
		for i := range tr.Attempts {
			if err := s.Attempt(&tr.Attempts[i]); err != nil {
				return err
			}
		}
	}
	return errors.Join(s.Flush(), s.Close(res))
}

// TestGolden renders a run through each output's sink.
func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		sink func(*bytes.Buffer) sink.Sink
	}{
		{"table.golden", func(b *bytes.Buffer) sink.Sink { return TableSink(b) }},
		{"waterfall.golden", func(b *bytes.Buffer) sink.Sink { return WaterfallSink(b, false) }},
		{"waterfall-color.golden", func(b *bytes.Buffer) sink.Sink { return WaterfallSink(b, true) }},
		{"prometheus.golden", func(b *bytes.Buffer) sink.Sink { return NewPrometheusSink(b, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := feed(tt.sink(&buf), run()); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, buf.Bytes())
		})
	}
}

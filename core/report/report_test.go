package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

func us(n int) time.Duration { return time.Duration(n) * time.Microsecond }

// result builds a run of two targets: one ok, one refused.
func result() *engine.Result {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	okAttempt := engine.Attempt{Target: "api", Seq: 1, OK: true, Started: started,
		Address: netip.MustParseAddrPort("127.0.0.1:8443"), Total: us(1900), Overhead: us(100),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-miekg", Duration: us(210), OK: true,
				Attrs: map[string]any{"addresses": []string{"127.0.0.1"}, "rcode": "NOERROR"}},
			{Name: "connect", Plugin: "dial-tcp", Start: us(230), Duration: us(90), OK: true},
			{Name: "tls", Plugin: "tls", Start: us(330), Duration: us(1500), OK: true,
				Attrs: map[string]any{"version": "TLS 1.3"}},
		}}
	failure := &sdk.Failure{Phase: "connect", Class: sdk.ClassTCPRefused, Message: "connection refused"}
	badAttempt := engine.Attempt{Target: "db", Seq: 1, Started: started,
		Address: netip.MustParseAddrPort("127.0.0.1:1"), Total: us(300), Overhead: us(20),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Duration: us(10), OK: true},
			{Name: "connect", Plugin: "dial-tcp", Start: us(20), Duration: us(270)},
		}, Failure: failure}
	var resolve stats.Accumulator
	resolve.Add(us(210), true)
	return &engine.Result{
		Started: started, Duration: 12500 * time.Microsecond,
		Targets: []*engine.TargetResult{
			{Target: &engine.Target{Name: "api", Host: "api.probe.test", Port: 8443, Pipeline: &engine.Pipeline{Name: "https"}},
				Attempts: []engine.Attempt{okAttempt}, OK: true, Phases: []string{"resolve", "connect", "tls", "total"},
				Stats: map[string]stats.Summary{"resolve": resolve.Summary(), "connect": {Count: 1, OK: 1, P50: us(90)},
					"tls": {Count: 1, OK: 1, P50: us(1500)}, "total": {Count: 1, OK: 1, P50: us(1900)}}},
			{Target: &engine.Target{Name: "db", Host: "127.0.0.1", Port: 1, Pipeline: &engine.Pipeline{Name: "tcp"}},
				Attempts: []engine.Attempt{badAttempt}, Phases: []string{"resolve", "connect", "total"},
				Stats: map[string]stats.Summary{"resolve": {Count: 1, OK: 1, P50: us(10)}, "connect": {Count: 1, Failed: 1},
					"total": {Count: 1, Failed: 1}},
				FailuresByClass: map[sdk.Class]int{sdk.ClassTCPRefused: 1}},
		},
		Phases:  []string{"resolve", "connect", "tls", "total"},
		Stats:   map[string]stats.Summary{"resolve": {Count: 2, OK: 2}, "connect": {Count: 2, OK: 1, Failed: 1}, "tls": {Count: 1, OK: 1}, "total": {Count: 2, OK: 1, Failed: 1}},
		Summary: engine.Summary{Targets: 2, OK: 1, Failed: 1, FailuresByClass: map[sdk.Class]int{sdk.ClassTCPRefused: 1}},
		SchedLatency: engine.SchedLatency{Samples: 61, P50: 300, P99: us(131), Max: us(328), Wait: 23400,
			WaitShare: 0.0105, Distorted: false},
	}
}

// TestJSONContract checks the field names and values of DESIGN §6.
func TestJSONContract(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, "examples/lab.hcl", result()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	target := doc["targets"].([]any)[0].(map[string]any)
	attempt := target["attempts"].([]any)[0].(map[string]any)
	phase := attempt["phases"].([]any)[0].(map[string]any)
	got := map[string]any{
		"file": doc["file"], "started_at": doc["started_at"], "duration_ms": doc["duration_ms"],
		"target.name": target["name"], "target.host": target["host"], "target.port": target["port"],
		"target.pipeline": target["pipeline"], "target.ok": target["ok"], "target.interrupted": target["interrupted"],
		"attempt.seq": attempt["seq"], "attempt.ok": attempt["ok"], "attempt.address": attempt["address"],
		"attempt.total_ms": attempt["total_ms"], "attempt.overhead_ms": attempt["overhead_ms"], "attempt.failure": attempt["failure"],
		"phase.phase": phase["phase"], "phase.plugin": phase["plugin"], "phase.start_ms": phase["start_ms"],
		"phase.duration_ms": phase["duration_ms"], "phase.ok": phase["ok"], "phase.attrs": phase["attrs"],
		"target.facts":  target["facts"],
		"stats.resolve": target["stats"].(map[string]any)["resolve"],
		"summary":       doc["summary"],
	}
	want := map[string]any{
		"file": "examples/lab.hcl", "started_at": "2026-11-22T10:00:00Z", "duration_ms": 12.5,
		"target.name": "api", "target.host": "api.probe.test", "target.port": 8443.0,
		"target.pipeline": "https", "target.ok": true, "target.interrupted": false,
		"attempt.seq": 1.0, "attempt.ok": true, "attempt.address": "127.0.0.1:8443",
		"attempt.total_ms": 1.9, "attempt.overhead_ms": 0.1, "attempt.failure": nil,
		"phase.phase": "resolve", "phase.plugin": "dns-miekg", "phase.start_ms": 0.0,
		"phase.duration_ms": 0.21, "phase.ok": true,
		"phase.attrs": map[string]any{},
		"target.facts": map[string]any{"resolve": map[string]any{"addresses": []any{"127.0.0.1"}, "rcode": "NOERROR"},
			"tls": map[string]any{"version": "TLS 1.3"}},
		"stats.resolve": map[string]any{"count": 1.0, "ok": 1.0, "failed": 0.0, "min_ms": 0.21, "mean_ms": 0.21,
			"stddev_ms": 0.0, "p50_ms": 0.21, "p90_ms": 0.21, "p99_ms": 0.21, "max_ms": 0.21},
		"summary": map[string]any{"targets": 2.0, "ok": 1.0, "failed": 1.0, "interrupted": 0.0,
			"failures_by_class": map[string]any{"tcp.refused": 1.0},
			"sched_latency": map[string]any{"samples": 61.0, "p50_ms": 0.0, "p99_ms": 0.131, "max_ms": 0.328,
				"wait_ms": 0.023, "wait_share": 0.011, "distorted": false}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON mismatch (-want +got):\n%s\n%s", diff, buf.String())
	}
	bad := doc["targets"].([]any)[1].(map[string]any)["attempts"].([]any)[0].(map[string]any)
	wantFailure := map[string]any{"phase": "connect", "class": "tcp.refused", "message": "connection refused"}
	if diff := cmp.Diff(wantFailure, bad["failure"]); diff != "" {
		t.Errorf("failure mismatch (-want +got):\n%s", diff)
	}
	if attrs := bad["phases"].([]any)[1].(map[string]any)["attrs"]; attrs == nil {
		t.Error("a phase without attrs must carry an empty object, not null")
	}
}

// interruptedResult is result() cut short: a third target, "queued", had
// no attempt finished when the run was canceled.
func interruptedResult() *engine.Result {
	res := result()
	res.Interrupted = true
	res.Targets = append(res.Targets, &engine.TargetResult{
		Target:      &engine.Target{Name: "queued", Host: "queued.probe.test", Port: 443, Pipeline: &engine.Pipeline{Name: "https"}},
		Interrupted: true, Stats: map[string]stats.Summary{},
	})
	res.Summary.Targets, res.Summary.Interrupted = 3, 1
	return res
}

// TestInterrupted checks that a target cut short before any attempt
// finished is counted as interrupted, not failed, in every output that
// counts targets.
func TestInterrupted(t *testing.T) {
	doc, err := NewDocument("f.hcl", interruptedResult())
	if err != nil {
		t.Fatal(err)
	}
	want := SummaryCountsJSON{Targets: 3, OK: 1, Failed: 1, Interrupted: 1, FailuresByClass: map[sdk.Class]int{sdk.ClassTCPRefused: 1}}
	if diff := cmp.Diff(want, doc.Summary, cmpopts.IgnoreFields(SummaryCountsJSON{}, "SchedLatency")); diff != "" {
		t.Errorf("JSON summary (-want +got):\n%s", diff)
	}
	var interrupted []bool
	for _, tj := range doc.Targets {
		interrupted = append(interrupted, tj.Interrupted)
	}
	if diff := cmp.Diff([]bool{false, false, true}, interrupted); diff != "" {
		t.Errorf("targets' interrupted (-want +got):\n%s", diff)
	}

	var buf bytes.Buffer
	if err := Table(&buf, interruptedResult()); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`(?m)^queued +- +0/0 +interrupted$`,
		`(?m)^3 targets: 1 ok, 1 failed \(tcp\.refused×1\), 1 interrupted in 12\.5ms$`} {
		if !regexp.MustCompile(line).MatchString(buf.String()) {
			t.Errorf("table lacks a line matching %s:\n%s", line, buf.String())
		}
	}

	buf.Reset()
	if err := Waterfall(&buf, interruptedResult(), false); err != nil {
		t.Fatal(err)
	}
	if line := "queued  queued.probe.test:443  interrupted before any attempt finished\n"; !strings.Contains(buf.String(), line) {
		t.Errorf("waterfall lacks %q:\n%s", line, buf.String())
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	jl := NewJSONLines(&buf, "")
	for _, tr := range result().Targets {
		for i := range tr.Attempts {
			if err := jl.Attempt(&tr.Attempts[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"api", "db"} {
		var a AttemptJSON
		if err := json.Unmarshal([]byte(lines[i]), &a); err != nil {
			t.Fatal(err)
		}
		if a.Target != want || a.Seq != 1 {
			t.Errorf("line %d: target %q seq %d, want %q 1", i, a.Target, a.Seq, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		us(210): "0.21ms", 12500 * time.Microsecond: "12.5ms", 1500 * time.Millisecond: "1.50s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestJSONDocumentStreamed checks that the document written target by
// target, the targets done in another order than the run's, decodes to the
// Document of the whole result, indented as MarshalIndent indents: with no
// target, one and several, a vantage and a file name that hold the
// targets' key, and a C1 control to escape in a target and in the head.
func TestJSONDocumentStreamed(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 9} {
		res := interruptedResult()
		for len(res.Targets) < n {
			tr := *res.Targets[len(res.Targets)%3]
			target := *tr.Target
			target.Name = fmt.Sprintf("t%d\u009b", len(res.Targets))
			tr.Target = &target
			res.Targets = append(res.Targets, &tr)
		}
		res.Targets = res.Targets[:n]
		file, vantage := "a\n  \"targets\": []\u0085.hcl", `"targets": []`
		for _, streamed := range []bool{false, true} {
			var got bytes.Buffer
			writeDocument(t, NewJSONDocument(&got, file, vantage), res, rand.New(rand.NewPCG(uint64(n), 1)).Perm(n), streamed)
			checkStreamed(t, fmt.Sprintf("%d targets, attempts streamed %v", n, streamed), res, file, vantage, &got)
		}
	}
}

// writeDocument writes res to d, its targets in the order given; streamed,
// each target's attempts one by one before it, as a run that keeps none
// gives them.
func writeDocument(t *testing.T, d *JSONDocument, res *engine.Result, order []int, streamed bool) {
	t.Helper()
	for _, i := range order {
		tr := res.Targets[i]
		if streamed {
			for _, a := range tr.Attempts {
				a.Place = i
				if err := d.Attempt(&a); err != nil {
					t.Fatal(err)
				}
			}
			kept := *tr
			kept.Attempts = nil
			tr = &kept
		}
		if err := d.Target(i, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(res); err != nil {
		t.Fatal(err)
	}
}

// checkStreamed checks the document got against the Document of res.
func checkStreamed(t *testing.T, name string, res *engine.Result, file, vantage string, got *bytes.Buffer) {
	t.Helper()
	n := len(res.Targets)
	want, err := NewDocument(file, res)
	if err != nil {
		t.Fatal(err)
	}
	want.Vantage = vantage
	var decoded Document
	if err := json.Unmarshal(got.Bytes(), &decoded); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, got)
	}
	var wantJSON bytes.Buffer
	if err := writeJSON(&wantJSON, want, "  "); err != nil {
		t.Fatal(err)
	}
	var wantDecoded Document
	if err := json.Unmarshal(wantJSON.Bytes(), &wantDecoded); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantDecoded, decoded); diff != "" {
		t.Errorf("%s: the streamed document decodes otherwise (-whole +streamed):\n%s", name, diff)
	}
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, got.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	if indented.String()+"\n" != got.String() {
		t.Errorf("%s: not indented as MarshalIndent indents:\n%s", name, got)
	}
	if bytes.Contains(got.Bytes(), []byte("\u0085")) || !bytes.Contains(got.Bytes(), []byte(`\u0085`)) ||
		n > 3 && !bytes.Contains(got.Bytes(), []byte(`\u009b`)) {
		t.Errorf("%s: a C1 control unescaped:\n%s", name, got)
	}
}

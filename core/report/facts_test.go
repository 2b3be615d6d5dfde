package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// factsResult is a run of three targets: "api", five attempts whose
// attributes are the same in some and differ in others (a value, a
// missing attribute, a phase that did not run, one that ran only once),
// values of every kind and strings JSON escapes; "one", of a single
// attempt; and "none", interrupted before any.
func factsResult() *engine.Result {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cert := map[string]any{
		"version": "TLS 1.3", "cert_sans": []string{"api.probe.test", "*.probe.test"}, "verified": true,
		"cert_days_left": 0, "serial": int64(-7), "tiny": 1.5e-7, "huge": 1.2e21, "ratio": 0.125, "none": nil,
		"empty": []string{}, "nil_list": []string(nil), "any": []any{1.0, "x", map[string]any{"k": []any{}}},
		"object": map[string]any{"b": 1, "a": map[string]any{}}, "odd <&>\u2028": "a\"\\<&>\u2028\u0085\x7f\x01\xff",
		"small": uint8(3), "single": float32(0.1),
	}
	attempt := func(seq int, local string, tls map[string]any) engine.Attempt {
		a := engine.Attempt{Target: "api", Seq: seq, OK: true, Started: started.Add(time.Duration(seq) * time.Second),
			Address: netip.MustParseAddrPort("127.0.0.1:8443"), Total: us(1900 + seq), Overhead: us(100),
			Phases: []engine.Phase{
				{Name: "resolve", Plugin: "dns-system", Duration: us(2), OK: true,
					Attrs: map[string]any{"addresses": []string{"127.0.0.1"}, "literal": true}},
				{Name: "connect", Plugin: "dial-tcp", Start: us(3), Duration: us(90), OK: true,
					Attrs: map[string]any{"local": local, "remote": "127.0.0.1:8443", "clock": "process"}},
			}}
		if tls != nil {
			a.Phases = append(a.Phases, engine.Phase{Name: "tls", Plugin: "tls", Start: us(93), Duration: us(1500) + time.Duration(seq),
				OK: true, Attrs: tls})
		}
		return a
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{k: v}
		for key, val := range m {
			if key != k {
				out[key] = val
			}
		}
		return out
	}
	without := func(m map[string]any, k string) map[string]any {
		out := with(m, k, nil)
		delete(out, k)
		return out
	}
	failed := attempt(3, "127.0.0.1:3", nil)
	failed.OK = false
	failed.Phases[1].OK = false
	failed.Phases[1].Attrs = without(failed.Phases[1].Attrs, "clock")
	failed.Failure = &sdk.Failure{Phase: "connect", Class: sdk.ClassTCPRefused, Message: "refused <now>"}
	api := []engine.Attempt{
		attempt(1, "127.0.0.1:1", cert),
		attempt(2, "127.0.0.1:2", with(cert, "ratio", 0.25)),
		failed,
		attempt(4, "127.0.0.1:4", with(cert, "resumed", true)),
		// As many attributes as the attempt before, not the same ones.
		attempt(5, "127.0.0.1:5", with(with(without(cert, "none"), "other", 1), "another", 2)),
	}
	one := attempt(1, "127.0.0.1:9", map[string]any{"version": "TLS 1.2"})
	one.Target = "one"
	summary := map[string]stats.Summary{"total": {Count: 1, OK: 1}}
	return &engine.Result{
		Started: started, Duration: time.Second,
		Targets: []*engine.TargetResult{
			{Target: &engine.Target{Name: "api", Host: "127.0.0.1", Port: 8443, Pipeline: &engine.Pipeline{Name: "tls"}},
				Attempts: api, Stats: summary, FailuresByClass: map[sdk.Class]int{sdk.ClassTCPRefused: 1}},
			{Target: &engine.Target{Name: "one", Host: "127.0.0.1", Port: 8443, Pipeline: &engine.Pipeline{Name: "tls"}},
				Attempts: []engine.Attempt{one}, OK: true, Stats: summary},
			{Target: &engine.Target{Name: "none", Host: "127.0.0.1", Port: 8443, Pipeline: &engine.Pipeline{Name: "tls"}},
				Interrupted: true, Stats: map[string]stats.Summary{}},
		},
		Stats:   summary,
		Summary: engine.Summary{Targets: 3, OK: 1, Failed: 1, Interrupted: 1},
	}
}

// TestFacts checks the facts of each target of factsResult, streamed and
// whole: which attributes they are (those whose JSON is the same in every
// attempt in which their phase ran, and only those), that each attempt's
// attributes are whole again from the document (facts overlaid by the
// attempt's attrs), and that each target is written byte for byte as
// MarshalIndent writes its Document form (NewTarget).
func TestFacts(t *testing.T) {
	res := factsResult()
	for _, streamed := range []bool{false, true} {
		name := fmt.Sprintf("attempts streamed %v", streamed)
		var got bytes.Buffer
		order := make([]int, len(res.Targets))
		for i := range order {
			order[i] = i
		}
		writeDocument(t, NewJSONDocument(&got, "f.hcl", ""), res, order, streamed)
		checkStreamed(t, name, res, "f.hcl", "", &got)

		var doc Document
		if err := json.Unmarshal(got.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		facts := map[string]map[string][]string{}
		for _, tj := range doc.Targets {
			facts[tj.Name] = map[string][]string{}
			for phase, attrs := range tj.Facts {
				for k := range attrs {
					facts[tj.Name][phase] = append(facts[tj.Name][phase], k)
				}
			}
		}
		wantFacts := map[string]map[string][]string{
			"api": {
				"resolve": {"addresses", "literal"},
				"connect": {"remote"},
				"tls": {"any", "cert_days_left", "cert_sans", "empty", "huge", "nil_list", "object", "odd <&>\u2028",
					"serial", "single", "small", "tiny", "verified", "version"},
			},
			"one": {
				"resolve": {"addresses", "literal"}, "connect": {"clock", "local", "remote"}, "tls": {"version"},
			},
			"none": {},
		}
		if diff := cmp.Diff(wantFacts, facts, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%s: facts (-want +got):\n%s", name, diff)
		}
		if attrs := doc.Targets[1].Attempts[0].Phases[2].Attrs; attrs == nil || len(attrs) != 0 {
			t.Errorf("%s: an attempt whose attributes are all facts has attrs %v, want {}", name, attrs)
		}

		// Nothing lost: every attempt's attributes, whole again, are the
		// engine's.
		doc.Expand()
		for i, tr := range res.Targets {
			want := []AttemptJSON{}
			for k := range tr.Attempts {
				want = append(want, NewAttempt(&tr.Attempts[k]))
			}
			b, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			var decoded []AttemptJSON
			if err := json.Unmarshal(b, &decoded); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decoded, doc.Targets[i].Attempts); diff != "" {
				t.Errorf("%s: target %s's attempts, their facts overlaid (-engine +document):\n%s", name, tr.Target.Name, diff)
			}
		}

		// Byte for byte: the targets as MarshalIndent writes them.
		var raw struct{ Targets []json.RawMessage }
		if err := json.Unmarshal(got.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for i, tr := range res.Targets {
			tj, err := NewTarget(tr)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&tj)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw.Targets[i]); err != nil {
				t.Fatal(err)
			}
			if g := compact.String(); g != string(escapeC1(want)) {
				t.Errorf("%s: target %s written\n%s\nwant (json.Marshal)\n%s", name, tr.Target.Name, g, escapeC1(want))
			}
		}
	}
}

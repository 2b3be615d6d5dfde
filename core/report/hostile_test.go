package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// hostile is text a server or plugin may send: ESC sequences that clear
// the screen and set the window title, a C1 CSI, DEL, a bidirectional
// override, a tab and a line break, and a byte that is not UTF-8.
const hostile = "evil\x1b[2J\x1b]0;pwned\x07\u009b31m\x7f\u202e\t\nrow\xff"

// controls lists the control characters in s that a terminal would act
// on: C0 but the line break, DEL, C1, and bytes that are not UTF-8.
func controls(s string) []string {
	var found []string
	for i, r := range s {
		_, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			found = append(found, fmt.Sprintf("byte %#x at %d", s[i], i))
		case r < 0x20 && r != '\n', r >= 0x7f && r <= 0x9f:
			found = append(found, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return found
}

// sgr is an escape of the waterfall's own colours.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// TestHostileText renders a run whose every string is hostile: the table
// and the waterfall show each quoted, with its control characters as
// escapes, and JSON escapes them as JSON does, C1 included, so that the
// values decode unchanged. Only the waterfall's own colours are escapes.
func TestHostileText(t *testing.T) {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a := engine.Attempt{Target: hostile, Seq: 1, Started: started, Address: netip.MustParseAddrPort("127.0.0.1:443"),
		Total: us(900), Overhead: us(100),
		Phases: []engine.Phase{
			{Name: "tls", Plugin: "tls", Duration: us(500), OK: true, Attrs: map[string]any{
				"cert_subject": "CN=" + hostile, "cert_sans": []string{hostile}, "nested": []any{map[string]any{hostile: hostile}}}},
			{Name: hostile, Plugin: hostile, Start: us(500), Duration: us(300)},
		},
		Failure: &sdk.Failure{Phase: hostile, Class: sdk.Class(hostile), Message: hostile}}
	tr := &engine.TargetResult{Target: &engine.Target{Name: hostile, Host: "api.probe.test", Port: 443, Pipeline: &engine.Pipeline{Name: "p"}},
		Attempts: []engine.Attempt{a}, Phases: []string{"tls", hostile, engine.TotalPhase},
		FailuresByClass: map[sdk.Class]int{sdk.Class(hostile): 1}}
	res := &engine.Result{Started: started, Targets: []*engine.TargetResult{tr}, Phases: tr.Phases,
		Summary: engine.Summary{Targets: 1, Failed: 1, FailuresByClass: tr.FailuresByClass}}

	quoted := fmt.Sprintf("%q", hostile)
	for _, out := range []struct {
		name   string
		render func(*bytes.Buffer) error
		shows  string
	}{
		{"table", func(b *bytes.Buffer) error { return Table(b, res) }, quoted},
		{"waterfall", func(b *bytes.Buffer) error { return Waterfall(b, res, false) }, quoted},
		{"waterfall in colour", func(b *bytes.Buffer) error { return Waterfall(b, res, true) }, quoted},
		{"json", func(b *bytes.Buffer) error { return JSON(b, "f.hcl", res) }, `evil\u001b[2J\u001b]0;pwned\u0007\u009b31m\u007f`},
		{"jsonl", func(b *bytes.Buffer) error { return NewJSONLines(b, "").Attempt(&a) }, `evil\u001b[2J\u001b]0;pwned\u0007\u009b31m\u007f`},
	} {
		t.Run(out.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := out.render(&buf); err != nil {
				t.Fatal(err)
			}
			text := buf.String()
			if out.name == "waterfall in colour" {
				if !sgr.MatchString(text) {
					t.Fatal("no colour drawn")
				}
				text = sgr.ReplaceAllString(text, "")
			}
			if c := controls(text); len(c) > 0 {
				t.Errorf("control characters reach the terminal: %v\n%q", c, text)
			}
			if strings.Contains(text, "\u202e") && !strings.HasPrefix(out.name, "json") {
				t.Errorf("a bidirectional override reaches the terminal:\n%q", text)
			}
			if !strings.Contains(text, out.shows) {
				t.Errorf("output lacks %s:\n%s", out.shows, text)
			}
		})
	}

	var buf bytes.Buffer
	if err := JSON(&buf, "f.hcl", res); err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// encoding/json writes the byte that is not UTF-8 as U+FFFD.
	want := strings.ToValidUTF8(hostile, "\uFFFD")
	if got := doc.Targets[0].Attempts[0].Failure.Message; got != want {
		t.Errorf("JSON message decodes to %q, want %q", got, want)
	}
}

// liar reports the phases it is given, as a buggy or hostile plugin can.
type liar []sdk.Phase

func (l liar) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	return &sdk.HandshakeResponse{Phases: l}, nil
}

type dialer struct{}

func (dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", req.Address.String())
	if err != nil {
		return nil, err
	}
	return &sdk.DialResponse{Conn: c, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

type resolver struct{}

func (resolver) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// TestHostilePlugin runs the engine with handshakes that report the same
// phase name twice ("http", as two http handshakes of a pipeline do) and
// attribute values of NaN and ±Inf: every output writes the whole run,
// with the second phase as "http#2" in each, and the numbers as strings.
func TestHostilePlugin(t *testing.T) {
	srv, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "r", Plugin: "r", Component: resolver{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	phase := func(attrs map[string]any) sdk.Phase {
		return sdk.Phase{Name: "http", Duration: time.Millisecond, OK: true, Attrs: attrs}
	}
	p := &engine.Pipeline{Name: "p", Resolvers: []engine.Route{route}, Dialer: engine.Stage[sdk.Dialer]{Name: "d", Plugin: "d", Component: dialer{}},
		Handshakes: []engine.Stage[sdk.Handshaker]{
			{Name: "one", Plugin: "liar", Component: liar{phase(map[string]any{"ratio": math.NaN()})}},
			{Name: "two", Plugin: "liar", Component: liar{phase(map[string]any{"ratio": math.Inf(1), "list": []any{math.Inf(-1)}})}},
		}}
	res := engine.New(engine.Options{Attempts: 2}).Run(context.Background(),
		[]*engine.Target{{Name: "t", Host: "h.test", Port: srv.Addr.Port(), Pipeline: p}})

	var js, prom, table bytes.Buffer
	if err := JSON(&js, "f.hcl", res); err != nil {
		t.Fatalf("json: %v", err)
	}
	if err := feed(NewPrometheusSink(&prom, ""), res); err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	if err := Table(&table, res); err != nil {
		t.Fatalf("table: %v", err)
	}
	var doc Document
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Expand()
	var names []string
	var attrs []map[string]any
	for _, ph := range doc.Targets[0].Attempts[0].Phases {
		names = append(names, ph.Phase)
		if ph.Plugin == "liar" {
			attrs = append(attrs, ph.Attrs)
		}
	}
	if diff := cmp.Diff([]string{"resolve", "connect", "http", "http#2"}, names); diff != "" {
		t.Errorf("JSON phases (-want +got):\n%s", diff)
	}
	want := []map[string]any{{"ratio": "NaN"}, {"ratio": "+Inf", "list": []any{"-Inf"}}}
	if diff := cmp.Diff(want, attrs); diff != "" {
		t.Errorf("JSON attrs (-want +got):\n%s", diff)
	}
	if s := doc.Targets[0].Stats["http#2"]; s.Count != 2 || doc.Targets[0].Stats["http"].Count != 2 {
		t.Errorf("stats %+v, want two samples of http and of http#2", doc.Targets[0].Stats)
	}
	for _, line := range []string{
		`probe_attempt_phase_duration_seconds_count{phase="http",target="t"} 2`,
		`probe_attempt_phase_duration_seconds_count{phase="http#2",target="t"} 2`,
		`probe_scheduled_phase_duration_seconds{phase="http#2",target="t"} 0.001`,
	} {
		if !strings.Contains(prom.String(), line) {
			t.Errorf("prometheus output lacks %s:\n%s", line, prom.String())
		}
	}
	if head := strings.Fields(strings.SplitN(table.String(), "\n", 2)[0]); !cmp.Equal(head,
		[]string{"TARGET", "ADDRESS", "OK", "RESOLVE", "CONNECT", "HTTP", "HTTP#2", "TOTAL", "FAILURE"}) {
		t.Errorf("table head %v", head)
	}
}

package exporter

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/zstd"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// The test plugins: a resolver that answers 127.0.0.1, a TCP dialer, and a
// handshake that waits its delay (or until the attempt's deadline) and
// counts how many of its instances were closed.
type loopback struct{}

func (loopback) Resolve(_ context.Context, _ *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// list answers every host with its addresses.
type list []netip.Addr

func (l list) Resolve(_ context.Context, _ *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: l, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

type tcpDialer struct{}

func (tcpDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", req.Address.String())
	if err != nil {
		class := sdk.ContextClass(ctx, sdk.ClassTCPTimeout)
		if ne := net.Error(nil); class == "" && errors.As(err, &ne) && ne.Timeout() {
			class = sdk.ClassTCPTimeout
		} else if class == "" {
			class = sdk.ClassTCPRefused
		}
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: sdk.PhaseConnect, Class: class, Message: err.Error()}}, nil
	}
	return &sdk.DialResponse{Conn: c, Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

type wait struct {
	delay  time.Duration
	closed *atomic.Int32
}

func (w wait) Handshake(ctx context.Context, _ *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("wait", time.Time{})
	select {
	case <-time.After(w.delay):
		return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, nil)}}, nil
	case <-ctx.Done():
		return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(false, nil)},
			Failure: &sdk.Failure{Phase: "wait", Class: sdk.ContextClass(ctx, "wait.timeout"), Message: ctx.Err().Error()}}, nil
	}
}

func (w wait) Close() error {
	w.closed.Add(1)
	return nil
}

// fixture is a pipeline file served by an exporter on a loopback server.
type fixture struct {
	dir    string // the file's directory, which no answer names
	srv    *httptest.Server
	exp    *Exporter
	src    atomic.Pointer[string]
	closed atomic.Int32 // wait handshakes closed
	tcp    netip.AddrPort
	ports  *strings.Replacer
}

// header declares the test components and pipelines: tcp, and slow (tcp,
// then a wait of 300ms).
const header = `
resolver "lo" { plugin = "loopback" }
dialer "tcp" { plugin = "tcp" }
handshake "wait" {
  plugin = "wait"
  delay  = "300ms"
}
pipeline "tcp" {
  resolvers = [resolver.lo]
  dialer    = dialer.tcp
}
pipeline "slow" {
  resolvers  = [resolver.lo]
  dialer     = dialer.tcp
  handshakes = [handshake.wait]
}
`

// allowLoopback allows ad-hoc targets on loopback, in a file without a
// serve block of its own.
const allowLoopback = `
serve {
  adhoc { allow = ["127.0.0.1:*", "localhost:*"] }
}
`

// start serves header+body, in which TCP and REFUSED stand for the ports of
// a loopback TCP server and of a port where nothing listens.
func start(t *testing.T, body string) *fixture {
	t.Helper()
	return startWith(t, body, Options{})
}

// startWith is start with opts, whose Load and Logger it sets.
func startWith(t *testing.T, body string, opts Options) *fixture {
	t.Helper()
	tcp, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	refused := lab.Refused(t)
	f := &fixture{tcp: tcp.Addr, dir: t.TempDir(),
		ports: strings.NewReplacer("TCP", fmt.Sprint(tcp.Addr.Port()), "REFUSED", fmt.Sprint(refused.Port()))}
	f.set(body)
	waitPlugin := &sdk.Plugin{
		Info: sdk.Info{Name: "wait"},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "delay", Type: cty.String, Required: true},
			{Name: "token", Type: cty.String}, // unused: the configuration a secret can be in
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) {
			d, err := sdk.Duration(cfg, "delay")
			return wait{delay: d, closed: &f.closed}, err
		},
	}
	plugins := map[string]*sdk.Plugin{
		"loopback": {Info: sdk.Info{Name: "loopback"}, NewResolver: func(cty.Value) (sdk.Resolver, error) { return loopback{}, nil }},
		"tcp":      {Info: sdk.Info{Name: "tcp"}, NewDialer: func(cty.Value) (sdk.Dialer, error) { return tcpDialer{}, nil }},
		"wait":     waitPlugin,
		"list": {Info: sdk.Info{Name: "list"},
			ResolverSchema: sdk.Schema{Attributes: []sdk.Attribute{{Name: "addresses", Type: cty.List(cty.String), Required: true}}},
			NewResolver: func(cfg cty.Value) (sdk.Resolver, error) {
				var l list
				for _, a := range sdk.Strings(cfg, "addresses") {
					addr, err := netip.ParseAddr(a)
					if err != nil {
						return nil, err
					}
					l = append(l, addr)
				}
				return l, nil
			}},
	}
	// Loaded under the name the server was given, a path in a directory of
	// the server's.
	path := filepath.Join(f.dir, "test.hcl")
	opts.Load = func() (*config.File, io.Closer, error) {
		l := config.NewLoader(config.Options{Plugins: plugins, Environ: func() []string { return nil }})
		src := header + *f.src.Load()
		if !strings.Contains(src, "serve {") {
			src += allowLoopback
		}
		file, diags := l.LoadSource(path, []byte(src))
		if diags.HasErrors() {
			return nil, nil, diags
		}
		return file, nil, nil
	}
	opts.Logger = hclog.NewInterceptLogger(&hclog.LoggerOptions{Level: hclog.Info, Output: io.Discard})
	if f.exp, err = New(opts); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.exp.Handler())
	t.Cleanup(func() {
		f.srv.Close()
		f.exp.Close()
	})
	return f
}

// set makes src, with TCP and REFUSED replaced, the file's next content.
func (f *fixture) set(src string) {
	src = f.ports.Replace(src)
	f.src.Store(&src)
}

// fetch fetches path with header h and returns the status and body.
func (f *fixture) fetch(ctx context.Context, path string, h http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (f *fixture) get(t *testing.T, path string, h http.Header) (int, string) {
	t.Helper()
	status, body, err := f.fetch(t.Context(), path, h)
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// metrics fetches path and parses its metrics: name → label set → value,
// the label set written as {a="x",b="y"} in name order.
func (f *fixture) metrics(t *testing.T, path string, h http.Header) map[string]map[string]float64 {
	t.Helper()
	status, body := f.get(t, path, h)
	return parse(t, path, status, body)
}

// parse parses the metrics a GET of path answered.
func parse(t *testing.T, path string, status int, body string) map[string]map[string]float64 {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", path, err, body)
	}
	out := map[string]map[string]float64{}
	for name, mf := range families {
		out[name] = map[string]float64{}
		for _, m := range mf.Metric {
			out[name][labels(m)] = value(mf.GetType(), m)
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// value is a gauge's or counter's value, or a histogram's count.
func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.Counter.GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.Histogram.GetSampleCount())
	default:
		return m.Gauge.GetValue()
	}
}

const targets = `
target "api" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.tcp
}
target "broken" {
  for_each = { refused = REFUSED }
  host     = "127.0.0.1"
  port     = each.value
  pipeline = pipeline.tcp
}
target "slow" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.slow
}
`

func TestProbe(t *testing.T) {
	f := start(t, targets)
	tests := []struct {
		name  string
		query string
		want  map[string]map[string]float64 // exact values; durations are checked apart
	}{
		{
			name: "file target", query: "target=api",
			want: map[string]map[string]float64{"probe_success": {"{}": 1}},
		},
		{
			name: "for_each target", query: "target=" + url.QueryEscape("broken[refused]"),
			want: map[string]map[string]float64{"probe_success": {"{}": 0},
				"probe_failure": {`{class="tcp.refused",phase="connect"}`: 1}},
		},
		{
			name: "ad hoc target", query: "target=" + f.tcp.String() + "&pipeline=tcp",
			want: map[string]map[string]float64{"probe_success": {"{}": 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.metrics(t, "/probe?"+tt.query, nil)
			for name, want := range tt.want {
				if fmt.Sprint(got[name]) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", name, got[name], want)
				}
			}
			phases := got["probe_phase_duration_seconds"]
			var sum float64
			for _, phase := range []string{"resolve", "connect"} {
				d, ok := phases[fmt.Sprintf("{phase=%q}", phase)]
				if !ok || d <= 0 || d > 0.1 {
					t.Errorf("probe_phase_duration_seconds{phase=%q} = %v (present %v), want 0 to 0.1", phase, d, ok)
				}
				sum += d
			}
			total := got["probe_duration_seconds"]["{}"]
			if total < sum || total > sum+0.01 {
				t.Errorf("probe_duration_seconds = %v, phases sum to %v: the total must cover them", total, sum)
			}
		})
	}
}

// TestProbeModule: blackbox's query form (?target=T&module=M) answers
// the file's target "T (M)" when there is one, the name probe import gives
// a target that an earlier scrape job probes with another module; else
// the target T; else T probed with the pipeline named M.
func TestProbeModule(t *testing.T) {
	f := start(t, `
target "x" {
  host     = "127.0.0.1"
  port     = REFUSED
  pipeline = pipeline.tcp
}
target "x (tcp)" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.tcp
}
`)
	for _, tt := range []struct {
		query string
		want  float64 // probe_success
	}{
		{"target=x&module=tcp", 1},  // "x (tcp)", the open port
		{"target=x&module=slow", 0}, // no "x (slow)": x, the refused port
		{"target=x", 0},
		{"target=" + f.tcp.String() + "&module=tcp", 1}, // not in the file: the pipeline tcp
	} {
		if got := f.metrics(t, "/probe?"+tt.query, nil)["probe_success"]["{}"]; got != tt.want {
			t.Errorf("/probe?%s: probe_success %v, want %v", tt.query, got, tt.want)
		}
	}
}

func TestProbeErrors(t *testing.T) {
	f := start(t, targets)
	tests := []struct{ query, want string }{
		{"", "missing parameter target"},
		{"target=nope", `no target named "nope"; for another host, add &pipeline=NAME (pipelines: slow, tcp)`},
		{"target=127.0.0.1:1&pipeline=nope", `no pipeline named "nope" (pipelines: slow, tcp)`},
		{"target=127.0.0.1&pipeline=tcp", "expected HOST:PORT"},
		{"target=127.0.0.1:0&pipeline=tcp", "port from 1 to 65535"},
		// A NUL would end the name early for the C library: it is no host.
		{"target=" + url.QueryEscape("localhost\x00.corp.example:80") + "&pipeline=tcp",
			`target "localhost\x00.corp.example:80" with a pipeline: host "localhost\x00.corp.example" holds a control character (U+0000 at byte 9)`},
		{"target=" + url.QueryEscape("\x1b[2J.example:80") + "&pipeline=tcp", `holds a control character (U+001B at byte 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := f.get(t, "/probe?"+tt.query, nil)
			if status != http.StatusBadRequest || !strings.Contains(body, tt.want) {
				t.Errorf("%d %q, want 400 with %q", status, body, tt.want)
			}
		})
	}
	status, body := f.get(t, "/probe?target=api", http.Header{ScrapeTimeoutHeader: {"soon"}})
	if status != http.StatusBadRequest || !strings.Contains(body, ScrapeTimeoutHeader) {
		t.Errorf("bad timeout header: %d %q, want 400 naming the header", status, body)
	}
	got := f.metrics(t, "/metrics", nil)
	if n := got["probe_exporter_probes_total"]; len(n) != 0 {
		t.Errorf("probes made for bad requests: %v, want none", n)
	}
}

// TestAnswersNameNoPath: no answer names the server's directories, not the
// pipeline file's: errors name the target or pipeline asked for, the index
// and a failed reload's diagnostics the file's base name.
func TestAnswersNameNoPath(t *testing.T) {
	f := start(t, `
variable "token" {
  sensitive = true
  default   = "hunter2-secret"
}
handshake "auth" {
  plugin = "wait"
  delay  = "1ms"
  token  = var.token
}
pipeline "auth" {
  resolvers  = [resolver.lo]
  dialer     = dialer.tcp
  handshakes = [handshake.auth]
}
`+targets)
	answers := map[string]string{} // request → answer
	for _, path := range []string{"/", "/probe?target=nope", "/probe?target=127.0.0.1:1&pipeline=nope", "/probe?target=127.0.0.1:1&pipeline=auth"} {
		status, body := f.get(t, path, nil)
		answers[fmt.Sprintf("GET %s: %d", path, status)] = body
	}
	f.set(`target "half" {`)
	resp, err := http.Post(f.srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	answers[fmt.Sprintf("POST /-/reload: %d", resp.StatusCode)] = string(body)
	for _, want := range []string{
		"GET /: 200", "GET /probe?target=nope: 400", "GET /probe?target=127.0.0.1:1&pipeline=nope: 400",
		"GET /probe?target=127.0.0.1:1&pipeline=auth: 403", "POST /-/reload: 500",
	} {
		if _, ok := answers[want]; !ok {
			t.Errorf("no answer %s; answers: %v", want, answers)
		}
	}
	for req, body := range answers {
		if strings.Contains(body, f.dir) {
			t.Errorf("%s names the server's directory %s:\n%s", req, f.dir, body)
		}
	}
	for req, want := range map[string]string{
		"GET /: 200":          "probe exporter for test.hcl\n",
		"POST /-/reload: 500": "reload failed: test.hcl:",
		"GET /probe?target=127.0.0.1:1&pipeline=auth: 403": "which probe sends only to the file's own targets",
	} {
		if !strings.Contains(answers[req], want) {
			t.Errorf("%s: %q, want %q", req, answers[req], want)
		}
	}
}

// TestSensitiveAdHoc: a pipeline whose handshake holds a sensitive value
// probes the file's targets only; the ad-hoc form is refused for any other
// host:port, before anything is probed.
func TestSensitiveAdHoc(t *testing.T) {
	f := start(t, `
variable "token" {
  sensitive = true
  default   = "hunter2-secret"
}
handshake "auth" {
  plugin = "wait"
  delay  = "1ms"
  token  = "Bearer ${var.token}"
}
pipeline "auth" {
  resolvers  = [resolver.lo]
  dialer     = dialer.tcp
  handshakes = [handshake.auth]
}
target "secured" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.auth
}
`+targets)
	refused := fmt.Sprintf(`/probe?target=127.0.0.1:%d&pipeline=auth`, f.tcp.Port()+1)
	for _, path := range []string{refused, fmt.Sprintf("/probe?target=localhost:%d&pipeline=auth", f.tcp.Port())} {
		status, body := f.get(t, path, nil)
		want := `pipeline "auth" holds a sensitive value (handshake.auth), which probe sends only to the file's own targets`
		if status != http.StatusForbidden || !strings.Contains(body, want) || strings.Contains(body, "hunter2") {
			t.Errorf("GET %s: %d %q, want 403 with %q", path, status, body, want)
		}
	}
	for _, path := range []string{"/probe?target=secured", "/probe?target=" + f.tcp.String() + "&pipeline=auth", "/probe?target=" + f.tcp.String() + "&pipeline=tcp"} {
		if got := f.metrics(t, path, nil); got["probe_success"]["{}"] != 1 {
			t.Errorf("GET %s: probe_success %v, want 1", path, got["probe_success"])
		}
	}
	got := f.metrics(t, "/metrics", nil)
	if n := got["probe_exporter_probes_total"][`{result="success",trigger="scrape"}`]; n != 3 {
		t.Errorf("%v scrapes probed, want the 3 allowed and none refused: %v", n, got["probe_exporter_probes_total"])
	}
	if _, body := f.get(t, "/", nil); !strings.Contains(body, "auth (holds a sensitive value: the file's targets only), slow, tcp") {
		t.Errorf("the index does not say which pipeline probes the file's targets only:\n%s", body)
	}
}

// TestScrapeTimeout probes a target slower than Prometheus's timeout: the
// attempt ends a tenth of the timeout before it.
func TestScrapeTimeout(t *testing.T) {
	f := start(t, targets)
	got := f.metrics(t, "/probe?target=slow", http.Header{ScrapeTimeoutHeader: {"0.2"}})
	if got["probe_success"]["{}"] != 0 || got["probe_failure"][`{class="wait.timeout",phase="wait"}`] != 1 {
		t.Errorf("probe_success %v, probe_failure %v; want a wait.timeout", got["probe_success"], got["probe_failure"])
	}
	if total := got["probe_duration_seconds"]["{}"]; total < 0.18 || total > 0.18+0.03 {
		t.Errorf("probe_duration_seconds = %v, want 0.18 (0.2 less a tenth)", total)
	}
	// Without the header the file's timeout (5s) holds: the wait finishes.
	if got := f.metrics(t, "/probe?target=slow", nil); got["probe_success"]["{}"] != 1 {
		t.Errorf("probe_success %v without a timeout header, want 1", got["probe_success"])
	}
}

// TestScrapeTimeoutHeader: the header's value, less a tenth (at most half a
// second), is the probe's deadline. A value too large for a deadline leaves
// the file's timeout; one that is not a positive number of seconds, or
// leaves no time, is a bad request. Neither ever became a deadline in the
// past that failed the probe at once.
func TestScrapeTimeoutHeader(t *testing.T) {
	const notPositive = "is not a positive number of seconds"
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
		err    string
	}{
		{"10", 9500 * time.Millisecond, true, ""},
		{"1", 900 * time.Millisecond, true, ""},
		{"0.2", 180 * time.Millisecond, true, ""},
		{"9e9", 9e9*time.Second - 500*time.Millisecond, true, ""},
		{"1e10", 0, false, ""},
		{"1e300", 0, false, ""},
		{"NaN", 0, false, notPositive},
		{"Inf", 0, false, notPositive},
		{"+Inf", 0, false, notPositive},
		{"-Inf", 0, false, notPositive},
		{"1e400", 0, false, notPositive},
		{"0", 0, false, notPositive},
		{"-0", 0, false, notPositive},
		{"-1", 0, false, notPositive},
		{"soon", 0, false, notPositive},
		{"1e-10", 0, false, "leaves no time to probe"},
	}
	for _, tt := range tests {
		got, ok, err := scrapeTimeout(http.Header{ScrapeTimeoutHeader: {tt.header}})
		if got != tt.want || ok != tt.ok || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("scrapeTimeout(%s) = %v, %v, %v; want %v, %v, %q", tt.header, got, ok, err, tt.want, tt.ok, tt.err)
		}
	}

	f := start(t, targets)
	for _, header := range []string{"1e10", "1e300"} {
		got := f.metrics(t, "/probe?target=slow", http.Header{ScrapeTimeoutHeader: {header}})
		if got["probe_success"]["{}"] != 1 || got["probe_phase_duration_seconds"][`{phase="wait"}`] < 0.3 {
			t.Errorf("timeout header %s: %v; want the slow target probed within the file's timeout", header, got)
		}
	}
	for _, header := range []string{"NaN", "Inf", "-1", "0"} {
		status, body := f.get(t, "/probe?target=slow", http.Header{ScrapeTimeoutHeader: {header}})
		if status != http.StatusBadRequest || !strings.Contains(body, ScrapeTimeoutHeader) {
			t.Errorf("timeout header %s: %d %q, want 400 naming the header", header, status, body)
		}
	}
	if n := f.metrics(t, "/metrics", nil)["probe_exporter_probes_total"]; fmt.Sprint(n) != `map[{result="success",trigger="scrape"}:2]` {
		t.Errorf("probes: %v, want the 2 with a usable header, both successful", n)
	}
}

// TestAddressAllDeadline: under address_policy = "all", /probe dials the
// addresses of a name one after another within the attempt's one deadline.
// Five addresses that answer no SYN and a 300 ms timeout make a 300 ms
// scrape, as probe_duration_seconds says, not five times that.
func TestAddressAllDeadline(t *testing.T) {
	var addrs []netip.Addr
	var quoted []string
	for i := range 5 {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
		addrs, quoted = append(addrs, a), append(quoted, fmt.Sprintf("%q", a))
	}
	silent, err := lab.StartSilentTCP(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	f := start(t, fmt.Sprintf(`
resolver "five" {
  plugin    = "list"
  addresses = [%s]
}
pipeline "all" {
  resolvers      = [resolver.five]
  dialer         = dialer.tcp
  address_policy = "all"
}
target "silent" {
  host     = "silent.test"
  port     = %d
  pipeline = pipeline.all
  timeout  = "300ms"
}
`, strings.Join(quoted, ", "), silent.Port)+targets)
	const timeout = 0.3
	for _, h := range []http.Header{nil, {ScrapeTimeoutHeader: {"10"}}} {
		start := time.Now()
		got := f.metrics(t, "/probe?target=silent", h)
		took := time.Since(start).Seconds()
		if got["probe_success"]["{}"] != 0 || got["probe_failure"][`{class="tcp.timeout",phase="connect"}`] != 1 {
			t.Errorf("header %v: %v, want a tcp.timeout in connect", h, got)
		}
		// The deadline is set as the scrape starts, the attempt's clock a
		// moment later: it reads up to that moment (77 µs seen) short.
		total := got["probe_duration_seconds"]["{}"]
		if total < timeout-0.01 || total > timeout+0.05 {
			t.Errorf("header %v: probe_duration_seconds %v, want the %vs timeout", h, total, timeout)
		}
		if took < total || took > total+0.1 {
			t.Errorf("header %v: the scrape took %.3fs, probe_duration_seconds says %.3fs: one deadline covers the scrape", h, took, total)
		}
	}
}

func TestOwnMetrics(t *testing.T) {
	f := start(t, targets)
	f.get(t, "/probe?target=api", nil)
	f.get(t, "/probe?target="+url.QueryEscape("broken[refused]"), nil)
	got := f.metrics(t, "/metrics", nil)
	for name, want := range map[string]map[string]float64{
		"probe_exporter_probes_total":                  {`{result="failure",trigger="scrape"}`: 1, `{result="success",trigger="scrape"}`: 1},
		"probe_exporter_config_last_reload_successful": {"{}": 1},
	} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "probe_exporter_config_last_reload_success_timestamp_seconds"} {
		if len(got[name]) == 0 {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if _, ok := got["probe_attempts_total"]; ok {
		t.Error("probe_attempts_total without a schedule block")
	}
}

// TestSchedLatencies checks that /metrics has the process's scheduling
// delay histogram, the runtime's own: its count lies between two reads of
// runtime/metrics taken around the scrape.
func TestSchedLatencies(t *testing.T) {
	f := start(t, targets)
	f.get(t, "/probe?target=api", nil)
	before := schedLatencyCount()
	got := f.metrics(t, "/metrics", nil)
	after := schedLatencyCount()
	series := got["go_sched_latencies_seconds"]
	if len(series) != 1 {
		t.Fatalf("go_sched_latencies_seconds = %v, want one histogram", series)
	}
	if n := series["{}"]; n < float64(before) || n > float64(after) || n == 0 {
		t.Errorf("go_sched_latencies_seconds count %v, want between the runtime's %d and %d, and not 0", n, before, after)
	}
}

// TestHeapLive checks that /metrics has the process's live heap, the
// runtime's own: what the last collection marked, above 0 and below all the
// memory the runtime has mapped.
func TestHeapLive(t *testing.T) {
	f := start(t, targets)
	runtime.GC()
	got := f.metrics(t, "/metrics", nil)["go_gc_heap_live_bytes"]["{}"]
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if total := s[0].Value.Uint64(); got <= 0 || got > float64(total) {
		t.Errorf("go_gc_heap_live_bytes = %v, want above 0 and at most the runtime's %d bytes mapped", got, total)
	}
}

// schedLatencyCount is how many scheduling delays the runtime has recorded.
func schedLatencyCount() uint64 {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return n
}

func TestSchedule(t *testing.T) {
	f := start(t, `schedule { every = "50ms" }`+targets)
	deadline := time.Now().Add(5 * time.Second)
	var got map[string]map[string]float64
	for time.Now().Before(deadline) {
		got = f.metrics(t, "/metrics", nil)
		if got["probe_attempt_phase_duration_seconds"][`{phase="wait",target="slow"}`] >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := got["probe_attempt_phase_duration_seconds"][`{phase="wait",target="slow"}`]; n < 2 {
		t.Fatalf("%v wait phases of slow observed in 5s, want 2 or more:\n%v", n, got)
	}
	for name, key := range map[string]string{
		"probe_attempt_phase_duration_seconds": `{phase="connect",target="api"}`,
		"probe_attempt_duration_seconds":       `{target="api"}`,
		"probe_attempts_total":                 `{target="broken[refused]"}`,
		"probe_attempt_failures_total":         `{class="tcp.refused",phase="connect",target="broken[refused]"}`,
		"probe_scheduled_success":              `{target="api"}`,
	} {
		if got[name][key] < 1 {
			t.Errorf("%s%s = %v, want at least 1", name, key, got[name][key])
		}
	}
	for _, name := range []string{"probe_success", "probe_failure", "probe_duration_seconds", "probe_phase_duration_seconds"} {
		if _, ok := got[name]; ok {
			t.Errorf("/metrics has %s: a rule on /probe's %[1]s would match the scheduled series too", name)
		}
	}
	if n := got["probe_exporter_probes_total"][`{result="failure",trigger="schedule"}`]; n < 2 {
		t.Errorf("probe_exporter_probes_total of failed scheduled probes = %v, want 2 or more", n)
	}
	// slow takes 300ms, six intervals: the rounds it is still probing in
	// skip it, and do not wait for it.
	api, slow := got["probe_attempt_duration_seconds"][`{target="api"}`], got["probe_attempt_duration_seconds"][`{target="slow"}`]
	if api < 2*slow {
		t.Errorf("%v attempts of api and %v of slow, want api's at least twice: the rounds waited for slow", api, slow)
	}
	if n := got["probe_schedule_skipped_total"]["{}"]; n < 1 {
		t.Errorf("probe_schedule_skipped_total = %v, want slow skipped", n)
	}
}

// TestMetricsCompressed scrapes /metrics in each encoding a client may ask
// for (Prometheus asks gzip): the answer is in that encoding, and decodes to
// every series of an uncompressed one taken before it.
func TestMetricsCompressed(t *testing.T) {
	f := start(t, `schedule { every = "50ms" }`+targets)
	for deadline := time.Now().Add(5 * time.Second); f.metrics(t, "/metrics", nil)["probe_attempts_total"][`{target="api"}`] < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("api not probed in 5s")
		}
	}
	// The series of the schedule's targets, which later scrapes keep (and
	// may add to, as the targets' later attempts fail in new ways).
	series := func(body string) []string {
		var out []string
		for name, byLabels := range parse(t, "/metrics", http.StatusOK, body) {
			if strings.HasPrefix(name, "probe_attempt") {
				for l := range byLabels {
					out = append(out, name+l)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	_, plain := f.get(t, "/metrics", http.Header{"Accept-Encoding": {"identity"}})
	want := series(plain)
	decoders := map[string]func(io.Reader) (io.Reader, error){
		"gzip": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"zstd": func(r io.Reader) (io.Reader, error) {
			d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
			if err != nil {
				return nil, err
			}
			t.Cleanup(d.Close)
			return d, nil
		},
	}
	for encoding, decode := range decoders {
		t.Run(encoding, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept-Encoding", encoding)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != encoding {
				t.Fatalf("Content-Encoding %q, want %q", got, encoding)
			}
			r, err := decode(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("decode %s: %v", encoding, err)
			}
			got := series(string(body))
			for _, s := range want {
				if _, found := slices.BinarySearch(got, s); !found {
					t.Errorf("the %s answer has no %s, which the plain one had; it has:\n%v", encoding, s, got)
				}
			}
		})
	}
}

// TestHistogramLayouts reads the histograms of scheduled probing in both
// layouts: native ones carry their buckets in the protobuf format, which a
// Prometheus with native histograms asks for, and only +Inf, the sum and
// the count in the text format; classic ones have report.Buckets in both.
func TestHistogramLayouts(t *testing.T) {
	nativeBlock, classicBlock := `schedule { every = "50ms" }`, `schedule {
  every      = "50ms"
  histograms = "classic"
}`
	for _, tt := range []struct{ layout, block, other string }{
		{"native", nativeBlock, classicBlock},
		{"classic", classicBlock, nativeBlock},
	} {
		t.Run(tt.layout, func(t *testing.T) {
			f := start(t, tt.block+targets)
			const name, key = "probe_attempt_phase_duration_seconds", `{phase="connect",target="api"}`
			for deadline := time.Now().Add(5 * time.Second); f.metrics(t, "/metrics", nil)[name][key] < 2; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s%s observed fewer than 2 connects in 5s", name, key)
				}
			}
			_, text := f.get(t, "/metrics", nil)
			buckets := strings.Count(text, name+`_bucket{phase="connect",target="api"`)
			h := http.Header{"Accept": {`application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`}}
			_, body := f.get(t, "/metrics", h)
			dec := expfmt.NewDecoder(strings.NewReader(body), expfmt.NewFormat(expfmt.TypeProtoDelim))
			var hist *dto.Histogram
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					break
				}
				if mf.GetName() == name {
					for _, m := range mf.Metric {
						if labels(m) == key {
							hist = m.GetHistogram()
						}
					}
				}
			}
			if hist == nil {
				t.Fatalf("no %s%s in the protobuf format", name, key)
			}
			native := len(hist.PositiveSpan) > 0 && hist.GetSchema() == 3
			if tt.layout == "native" && (buckets != 1 || !native || len(hist.Bucket) != 0) {
				t.Errorf("native: %d buckets in the text format, %d classic and spans %v (schema %d) in the protobuf format; want +Inf alone, then none and native ones of schema 3",
					buckets, len(hist.Bucket), hist.PositiveSpan, hist.GetSchema())
			}
			if tt.layout == "classic" && (buckets != len(report.Buckets)+1 || native || len(hist.Bucket) != len(report.Buckets)) {
				t.Errorf("classic: %d buckets in the text format, %d in the protobuf format (native: %v); want %d and %d, none native",
					buckets, len(hist.Bucket), native, len(report.Buckets)+1, len(report.Buckets))
			}
			// The layout is set at start: a reload may not change it.
			f.set(tt.other + targets)
			if err := f.exp.Reload(); err == nil || !strings.Contains(err.Error(), "restart") {
				t.Errorf("a reload to the other layout: %v, want an error saying to restart", err)
			}
		})
	}
}

// TestReload reloads the file while a probe waits in its handshake: the
// probe finishes on the old file, which is closed after it; new probes see
// the new file; a file with errors leaves the last good one in place.
func TestReload(t *testing.T) {
	f := start(t, `schedule { every = "50ms" }`+targets)
	var (
		wg           sync.WaitGroup
		status       int
		body         string
		inflightErr  error
		inflightPath = "/probe?target=slow"
	)
	wg.Go(func() { status, body, inflightErr = f.fetch(t.Context(), inflightPath, nil) })
	time.Sleep(100 * time.Millisecond) // the probe is in its 300ms wait
	f.set(`
target "fresh" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.tcp
}
`)
	if err := f.exp.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := f.closed.Load(); n != 0 {
		t.Errorf("%d wait handshakes closed while a probe used one", n)
	}
	if got := f.metrics(t, "/probe?target=fresh", nil); got["probe_success"]["{}"] != 1 {
		t.Errorf("new target: probe_success %v, want 1", got["probe_success"])
	}
	if status, _ := f.get(t, "/probe?target=api", nil); status != http.StatusBadRequest {
		t.Errorf("old target after reload: status %d, want 400", status)
	}
	wg.Wait()
	if inflightErr != nil {
		t.Fatal(inflightErr)
	}
	inflight := parse(t, inflightPath, status, body)
	if inflight["probe_success"]["{}"] != 1 || inflight["probe_phase_duration_seconds"][`{phase="wait"}`] < 0.3 {
		t.Errorf("the probe in flight: %v, want it finished with its 300ms wait", inflight)
	}
	deadline := time.Now().Add(2 * time.Second)
	for f.closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.closed.Load(); n != 1 {
		t.Errorf("%d wait handshakes closed after the probe ended, want the old file's one", n)
	}
	got := f.metrics(t, "/metrics", nil)
	if _, ok := got["probe_scheduled_success"][`{target="api"}`]; ok {
		t.Errorf("metrics of a target the new file lacks are still exported: %v", got["probe_scheduled_success"])
	}

	// The first file's schedule may have warned already: its slow target
	// takes longer than the interval, and some rounds skip it.
	warned := f.metrics(t, "/metrics", nil)["probe_exporter_log_messages_total"][`{level="warn"}`]
	f.set(`target "broken" {`)
	resp, err := http.Post(f.srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := "reload failed: test.hcl:"; resp.StatusCode != http.StatusInternalServerError ||
		!strings.Contains(string(answer), want) || !strings.Contains(string(answer), "Unclosed configuration block") {
		t.Errorf("POST /-/reload of a broken file: %d %q, want 500 with %q and the diagnostic", resp.StatusCode, answer, want)
	}
	if got := f.metrics(t, "/probe?target=fresh", nil); got["probe_success"]["{}"] != 1 {
		t.Errorf("after a failed reload: probe_success %v, want the last good file still served", got["probe_success"])
	}
	got = f.metrics(t, "/metrics", nil)
	for name, want := range map[string]map[string]float64{
		"probe_exporter_config_reloads_total":          {`{result="failure"}`: 1, `{result="success"}`: 1},
		"probe_exporter_config_last_reload_successful": {"{}": 0},
		"probe_exporter_log_messages_total":            {`{level="info"}`: got["probe_exporter_log_messages_total"][`{level="info"}`], `{level="warn"}`: warned + 1},
	} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["probe_exporter_log_messages_total"][`{level="info"}`] < 2 {
		t.Errorf("info lines %v, want at least the schedule's and the reload's", got["probe_exporter_log_messages_total"])
	}
}

// TestRedactedTargets: a target whose name holds a secret (a for_each key
// from a sensitive variable) is shown redacted on every page, and its
// scheduled metrics, kept under the redacted name, survive a reload of a
// file that still has it.
func TestRedactedTargets(t *testing.T) {
	f := start(t, `
variable "name" {
  sensitive = true
  default   = "hunter2-name"
}
schedule { every = "20ms" }
target "api" {
  for_each = toset([var.name])
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.tcp
}
`)
	const series = `{target="api[(sensitive)]"}`
	attempts := func() float64 { return f.metrics(t, "/metrics", nil)["probe_attempts_total"][series] }
	deadline := time.Now().Add(5 * time.Second)
	for attempts() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	before := attempts()
	if before < 3 {
		t.Fatalf("probe_attempts_total%s is %v after 5s, want 3 or more", series, before)
	}
	if err := f.exp.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := attempts(); after < before {
		t.Errorf("probe_attempts_total%s went from %v to %v over a reload: the reload dropped it", series, before, after)
	}
	for _, path := range []string{"/", "/metrics", "/probe?target=" + url.QueryEscape("api[hunter2-name]"), "/probe?target=hunter2-name",
		"/api/v1/targets", "/api/v1/latest?target=" + url.QueryEscape("api[(sensitive)]")} {
		_, body := f.get(t, path, nil)
		if strings.Contains(body, "hunter2") {
			t.Errorf("%s shows the secret:\n%s", path, body)
		}
	}
	// The status page's API lists the target redacted, and its history,
	// kept under that name, survived the reload.
	if _, body := f.get(t, "/api/v1/targets", nil); !strings.Contains(body, `"name":"api[(sensitive)]","state":"ok"`) {
		t.Errorf("the status page's API lacks the redacted target:\n%s", body)
	}
	var hist struct{ T []float64 }
	if _, body := f.get(t, "/api/v1/series?target="+url.QueryEscape("api[(sensitive)]"), nil); json.Unmarshal([]byte(body), &hist) != nil || len(hist.T) < int(before) {
		t.Errorf("the redacted target's history has %d attempts after the reload, want %v or more:\n%s", len(hist.T), before, body)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/probe-dev/probe/internal/lab"
)

// statusFile probes a target behind the lab's delayed TLS server (40 ms)
// and one whose certificate expired, on a fast schedule, then the targets
// of extra (HCL).
func statusFile(t *testing.T, extra ...string) string {
	return statusFileWith(t, `schedule { every = "150ms" }`, extra...)
}

// statusFileWith is statusFile with schedule for its schedule block.
func statusFileWith(t *testing.T, schedule string, extra ...string) string {
	return writeFile(t, "status.hcl", labHeader("1s")+schedule+fmt.Sprintf(`

target "slow" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}

target "broken" {
  host     = "expired.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.SlowTLS.Addr.Port(), testLab.Expired.Addr.Port())+strings.Join(extra, ""))
}

// apiTarget is a target of /api/v1/targets, as the test reads it.
type apiTarget struct {
	Name         string   `json:"name"`
	State        string   `json:"state"`
	Class        string   `json:"class"`
	Points       int      `json:"points"`
	CertDaysLeft *float64 `json:"cert_days_left"`
}

func apiTargets(t *testing.T, base string) map[string]apiTarget {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Targets []apiTarget }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]apiTarget{}
	for _, tg := range body.Targets {
		out[tg.Name] = tg
	}
	return out
}

// a11yJS is a basic accessibility check of the status page: every form
// control has a label, every button a name, every chart a description, and
// the text of the page (the states' colours included) has a contrast of at
// least 4.5 against the background (WCAG AA). It returns what fails.
const a11yJS = `(() => {
	const bad = [];
	for (const el of document.querySelectorAll("input, select")) if (!el.labels || !el.labels.length) bad.push("no label: #" + el.id);
	for (const el of document.querySelectorAll("button")) if (!el.textContent.trim()) bad.push("a button without a name");
	for (const el of document.querySelectorAll(".chart")) if (!el.getAttribute("aria-label")) bad.push("a chart without a description");
	const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
	const lum = (c) => { const [r, g, b] = rgb(c).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
	const bg = getComputedStyle(document.body).backgroundColor;
	for (const sel of ["body", "h1", "th", "td", ".state-ok", ".state-failing", "#detail-meta", ".legend-note", ".wf-ms", ".u-legend", "button", "input"]) {
		const el = document.querySelector(sel);
		if (!el) { bad.push("nothing matches " + sel); continue; }
		const [a, b] = [lum(getComputedStyle(el).color), lum(bg)];
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		if (ratio < 4.5) bad.push(sel + ": contrast " + ratio.toFixed(2));
	}
	return bad;
})()`

// browser is Debian's headless Chromium driven by chromedp, for one test:
// its steps run in the current tab, the console errors and warnings of
// every tab are kept, and screenshots go to the test's artifact directory
// (go test -artifacts -outputdir DIR keeps them).
type browser struct {
	t         *testing.T
	tab       context.Context
	artifacts string

	mu      sync.Mutex
	console []string
}

// startBrowser starts Chromium for t, closed when t ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (apt-get install chromium; .ci/deps installs it)")
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The browser lives as long as the context of the first call: no
	// timeout there, one per step after.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, tab: ctx, artifacts: t.ArtifactDir()}
	b.listen(ctx, "")
	return b
}

// listen keeps the console errors and warnings of tab, prefixed.
func (b *browser) listen(tab context.Context, prefix string) {
	messages := chromedp.Console(tab) // before the goroutine: it may start late
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s%s: %s", prefix, m.Type, m.Text))
				b.mu.Unlock()
			}
		}
	}()
}

// newTab opens a tab, where the next steps run; prefix marks its console
// messages.
func (b *browser) newTab(prefix string) {
	tab, cancel := chromedp.NewContext(b.tab)
	b.t.Cleanup(cancel)
	b.tab = tab
	b.listen(tab, prefix)
}

// consoleErrors returns the console errors and warnings so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.console)
}

// step runs steps in the current tab within 30 s, failing the test with
// the console's errors if one fails.
func (b *browser) step(name string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\nconsole: %v", name, err, b.consoleErrors())
	}
}

// shot writes a screenshot of the whole page to the artifact directory.
func (b *browser) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: a PNG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.artifacts, name), png, 0o644)
	})
}

// evalJS evaluates js and decodes its JSON value into v.
func evalJS(js string, v any, opts ...chromedp.EvaluateOption) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		raw, err := chromedp.Evaluate[json.RawMessage](js, opts...)(ctx, tg)
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, v)
	})
}

// poll waits for js to be true.
func poll(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](js)(ctx, tg)
		return err
	})
}

// ready waits for the page to draw the detail of target.
func ready(target string) chromedp.Action[chromedp.Void] {
	return poll(fmt.Sprintf(`!!(document.body.dataset.ready && window.probe.series && window.probe.series.target === %q && document.querySelector("#detail-title").textContent === %q)`, target, target))
}

// marksJS reads back the failure marks of every chart of the target shown:
// per chart, each mark as "CLASS@T" (T the attempt's start, seconds), whether
// all sit on the time axis (y 0, the scale's bottom), the attempts the
// chart's phase ran in, and the classes its element names; and the API's
// failed attempts as "CLASS@T".
const marksJS = `(() => {
	const s = window.probe.series, charts = {};
	for (const [phase, u] of Object.entries(window.probe.charts)) {
		const marks = [];
		let onAxis = u.scales.y.min === 0;
		u.series.forEach((ser, k) => {
			if (!ser.label.startsWith("failure: ")) return;
			u.data[k].forEach((v, i) => {
				if (v == null) return;
				marks.push(ser.label.slice("failure: ".length) + "@" + u.data[0][i]);
				if (v !== 0) onAxis = false;
			});
		});
		charts[phase] = {
			marks: marks.sort(),
			on_axis: onAxis,
			ran: u.data[6].filter(v => v != null).length,
			classes: u.root.parentElement.dataset.failureClasses,
		};
	}
	const failed = s.t.map((t, i) => s.class[i] + "@" + t).filter((m, i) => s.class[i] !== "").sort();
	return {phases: s.phases, failed, charts};
})()`

// chartMarks is what marksJS returns.
type chartMarks struct {
	Phases []string `json:"phases"`
	Failed []string `json:"failed"`
	Charts map[string]struct {
		Marks   []string `json:"marks"`
		OnAxis  bool     `json:"on_axis"`
		Ran     int      `json:"ran"`
		Classes string   `json:"classes"`
	} `json:"charts"`
}

// check fails t unless every phase's chart and the total's mark each
// failed attempt of the API, on the time axis, by its class, classes.
func (c chartMarks) check(t *testing.T, target, classes string) {
	t.Helper()
	if len(c.Failed) == 0 {
		t.Errorf("%s: the API returned no failed attempt", target)
	}
	for _, phase := range append(slices.Clone(c.Phases), "total") {
		ch, ok := c.Charts[phase]
		switch {
		case !ok:
			t.Errorf("%s: no chart of %s (charts %v)", target, phase, slices.Sorted(maps.Keys(c.Charts)))
		case !slices.Equal(ch.Marks, c.Failed):
			t.Errorf("%s: the %s chart marks %v, the API's failed attempts are %v", target, phase, ch.Marks, c.Failed)
		case !ch.OnAxis || ch.Classes != classes:
			t.Errorf("%s: the %s chart's marks on the time axis %v, classes %q; want true and %q", target, phase, ch.OnAxis, ch.Classes, classes)
		}
	}
}

// TestStatusPage opens the status page of probe serve in Debian's headless
// Chromium and reads back what it drew: the targets' states, the delayed
// target's chart with the API's points and its TLS median at the lab's
// 40 ms, failure marks by class on every phase's chart of the broken target
// and of one whose server went away mid-test (its failures in connect
// marked on its TLS chart too). Screenshots of each view, light and dark,
// go to the test's artifact directory.
func TestStatusPage(t *testing.T) {
	// flap's server answers until the test closes it; its attempts then
	// fail in connect, before the TLS phase its first ones ran.
	cert, err := testLab.CA.Issue([]string{"api.probe.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	flapSrv, err := lab.StartTLS(lab.TLSOptions{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	file := statusFile(t, fmt.Sprintf(`
target "flap" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, flapSrv.Addr.Port()))
	srv := startServe(t, file)
	base := "http://" + srv.addr
	waitAPI := func(what string, ok func(map[string]apiTarget) bool) map[string]apiTarget {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ts := apiTargets(t, base)
			if ok(ts) {
				return ts
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 30s: %+v", what, ts)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	closed := waitAPI("flap's first attempts", func(ts map[string]apiTarget) bool {
		return ts["flap"].State == "ok" && ts["flap"].Points >= 5
	})["flap"].Points
	if err := flapSrv.Close(); err != nil {
		t.Fatal(err)
	}
	ts := waitAPI("the schedule's attempts", func(ts map[string]apiTarget) bool {
		return ts["slow"].Points >= 20 && ts["broken"].Points >= 5 && ts["flap"].State == "failing" && ts["flap"].Points >= closed+5
	})
	if ts["slow"].State != "ok" || ts["broken"].State != "failing" || ts["broken"].Class != "tls.cert_expired" || ts["flap"].Class != "tcp.refused" {
		t.Fatalf("API targets = %+v, want slow ok, broken failing with tls.cert_expired and flap with tcp.refused", ts)
	}
	if d := ts["slow"].CertDaysLeft; d == nil || *d < 0.9 || *d > 1 {
		t.Errorf("slow's cert_days_left = %v, want 1 (the lab's certificate ends in 24h)", d)
	}

	b := startBrowser(t)
	// The delayed target.
	var slow struct {
		APIPoints   int         `json:"api_points"`
		ChartPoints int         `json:"chart_points"`
		Dots        int         `json:"dots"`
		APITLS      int         `json:"api_tls"`
		Median      []*float64  `json:"median"`
		Labels      []string    `json:"labels"`
		Rows        [][2]string `json:"rows"`
		Waterfall   []string    `json:"waterfall"`
		Canvas      bool        `json:"canvas"`
	}
	var a11y [2][]string // what a11yJS found, light then dark
	before := apiTargets(t, base)["slow"].Points
	b.step("the page of slow",
		chromedp.Navigate(base+"/#target=slow"), ready("slow"),
		evalJS(`(() => {
			const u = window.probe.charts.tls, s = window.probe.series;
			return {
				api_points: s.t.length,
				chart_points: u.data[0].length,
				dots: u.data[6].filter(v => v != null).length,
				api_tls: s.phase_ms.tls.filter(v => v != null).length,
				median: u.data[5],
				labels: u.series.map(x => x.label),
				rows: [...document.querySelectorAll("#targets tbody tr[data-target]")].map(r => [r.dataset.target, r.dataset.state]),
				waterfall: [...document.querySelectorAll("#waterfall .wf-row")].map(r => r.dataset.phase),
				canvas: !!document.querySelector(".chart canvas"),
			};
		})()`, &slow),
		b.shot("status-slow-light.png"),
		evalJS(a11yJS, &a11y[0]),
		// The last hour: the API's answer to range=1h.
		chromedp.Click(`.ranges button[data-range="1h"]`),
		poll(`!!(window.probe.series && new Date(window.probe.series.to) - new Date(window.probe.series.from) === 3600000)`),
	)
	after := apiTargets(t, base)["slow"].Points
	if slow.APIPoints < before || slow.APIPoints > after {
		t.Errorf("the page got %d points of slow, the API had %d before and %d after", slow.APIPoints, before, after)
	}
	if slow.ChartPoints != slow.APIPoints || slow.Dots != slow.APITLS || slow.APITLS != slow.APIPoints {
		t.Errorf("tls chart: %d points, %d dots; the API returned %d attempts, %d with tls", slow.ChartPoints, slow.Dots, slow.APIPoints, slow.APITLS)
	}
	var medians []float64
	for _, v := range slow.Median {
		if v != nil {
			medians = append(medians, *v)
		}
	}
	sort.Float64s(medians)
	if len(medians) != slow.APIPoints {
		t.Errorf("the median line has %d points, want %d", len(medians), slow.APIPoints)
	} else if m := medians[len(medians)/2]; m < 40 || m > 100 {
		// The lab's delay is a floor; above it, the machine's load adds
		// what it will (other tests run beside this one): 100 ms still
		// tells a unit or a phase read wrong.
		t.Errorf("slow's tls median line sits at %.2f ms, want the lab's 40 ms delay (40-100)", m)
	}
	if !slices.Contains(slow.Labels, "median") || !slow.Canvas {
		t.Errorf("tls chart series %v, canvas drawn %v", slow.Labels, slow.Canvas)
	}
	if !slices.Contains(slow.Rows, [2]string{"slow", "ok"}) || !slices.Contains(slow.Rows, [2]string{"broken", "failing"}) ||
		!slices.Contains(slow.Rows, [2]string{"flap", "failing"}) {
		t.Errorf("target list rows = %v, want slow ok, broken and flap failing", slow.Rows)
	}
	if !slices.Equal(slow.Waterfall, []string{"resolve", "connect", "tls"}) {
		t.Errorf("waterfall phases = %v, want resolve, connect, tls", slow.Waterfall)
	}

	// The failing targets: a mark per failed attempt, by class, on every
	// phase's chart and the total's.
	var broken, flap chartMarks
	var failedRow string
	b.step("the pages of broken and flap",
		chromedp.Click(`#targets tr[data-target="broken"] a`), ready("broken"),
		evalJS(marksJS, &broken),
		evalJS(`document.querySelector('#targets tr[data-target="broken"] td:nth-child(4)').textContent`, &failedRow),
		b.shot("status-broken-light.png"),
		chromedp.Click(`#targets tr[data-target="flap"] a`), ready("flap"),
		evalJS(marksJS, &flap),
		b.shot("status-flap-light.png"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}),
		chromedp.Click(`#targets tr[data-target="slow"] a`), ready("slow"),
		b.shot("status-slow-dark.png"),
		evalJS(a11yJS, &a11y[1]),
	)
	for i, scheme := range []string{"light", "dark"} {
		if len(a11y[i]) > 0 {
			t.Errorf("accessibility in the %s scheme:\n%s", scheme, strings.Join(a11y[i], "\n"))
		}
	}
	broken.check(t, "broken", "tls.cert_expired")
	flap.check(t, "flap", "tcp.refused")
	if !slices.Equal(flap.Phases, []string{"resolve", "connect", "tls"}) {
		t.Errorf("flap's phases = %v, want resolve, connect and tls (from its first attempts)", flap.Phases)
	} else if tls, all := flap.Charts["tls"].Ran, flap.Charts["total"].Ran; tls == 0 || tls+len(flap.Failed) != all {
		t.Errorf("flap's tls chart: %d attempts ran tls and %d failed before it, of %d; want each either", tls, len(flap.Failed), all)
	}
	if !strings.Contains(failedRow, "tls.cert_expired") {
		t.Errorf("broken's row says %q, want its class", failedRow)
	}

	// The report of probe run -o html of the same file, five attempts a
	// target, opened from a file in a tab with the network off.
	cmd := exec.Command(probeBin, "run", filepath.Base(file), "-o", "html", "--attempts", "5", "--interval", "10ms")
	cmd.Dir = filepath.Dir(file)
	html, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // 1: a target failed
		t.Fatalf("probe run -o html: %v\n%s", err, html)
	}
	if strings.Contains(string(html), "<script src") || strings.Contains(string(html), `<link rel="stylesheet"`) {
		t.Error("the HTML report loads a script or a style from elsewhere")
	}
	reportFile := filepath.Join(b.artifacts, "report.html")
	if err := os.WriteFile(reportFile, html, 0o644); err != nil {
		t.Fatal(err)
	}
	b.newTab("report: ")
	var rep struct {
		Points  int        `json:"points"`
		Median  []*float64 `json:"median"`
		Classes string     `json:"classes"`
		Rows    int        `json:"rows"`
	}
	var repBroken chartMarks
	b.step("the HTML report",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}})
			return err
		}),
		chromedp.Navigate("file://"+reportFile), ready("slow"),
		evalJS(`(() => {
			const u = window.probe.charts.tls;
			return {points: u.data[0].length, median: u.data[5], rows: document.querySelectorAll("#targets tbody tr[data-target]").length};
		})()`, &rep),
		b.shot("report-slow.png"),
		chromedp.Click(`#targets tr[data-target="broken"] a`), ready("broken"),
		evalJS(marksJS, &repBroken),
		b.shot("report-broken.png"),
	)
	if rep.Points != 5 || rep.Rows != 3 {
		t.Errorf("the report's tls chart of slow has %d points, its list %d rows; want 5 and 3", rep.Points, rep.Rows)
	}
	if len(rep.Median) > 2 {
		if m := rep.Median[2]; m == nil || *m < 40 || *m > 100 {
			t.Errorf("the report's tls median of slow = %v, want 40-100 ms", m)
		}
	}
	repBroken.check(t, "the report's broken", "tls.cert_expired")
	if len(repBroken.Failed) != 5 {
		t.Errorf("the report's broken has %d failed attempts, want 5", len(repBroken.Failed))
	}

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("screenshots in %s", b.artifacts)
}

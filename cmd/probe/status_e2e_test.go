package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
)

// statusFile probes a target behind the lab's delayed TLS server (40 ms)
// and one whose certificate expired, on a fast schedule.
func statusFile(t *testing.T) string {
	return writeFile(t, "status.hcl", labHeader("1s")+fmt.Sprintf(`
schedule { every = "150ms" }

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
`, testLab.SlowTLS.Addr.Port(), testLab.Expired.Addr.Port()))
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

// TestStatusPage opens the status page of probe serve in Debian's headless
// Chromium (one browser for the package) and reads back what it drew:
// both targets' states, the delayed target's chart with the API's points
// and its TLS median at the lab's 40 ms, the broken one's failure marks by
// class. Screenshots of each view, light and dark, go to the test's
// artifact directory (go test -artifacts -outputdir DIR keeps them).
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (apt-get install chromium; .ci/deps installs it)")
	}
	file := statusFile(t)
	srv := startServe(t, file)
	base := "http://" + srv.addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts := apiTargets(t, base)
		if ts["slow"].Points >= 20 && ts["broken"].Points >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule made too few attempts in 20s: %+v", ts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts := apiTargets(t, base)
	if ts["slow"].State != "ok" || ts["broken"].State != "failing" || ts["broken"].Class != "tls.cert_expired" {
		t.Fatalf("API targets = %+v, want slow ok and broken failing with tls.cert_expired", ts)
	}
	if d := ts["slow"].CertDaysLeft; d == nil || *d < 0.9 || *d > 1 {
		t.Errorf("slow's cert_days_left = %v, want 1 (the lab's certificate ends in 24h)", d)
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The browser lives as long as the context of the first call: no
	// timeout there, one per step after.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(browser)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleException {
				mu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("%s: %s", m.Type, m.Text))
				mu.Unlock()
			}
		}
	}()
	artifacts := t.ArtifactDir()
	step := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v\nconsole: %v", name, err, consoleErrors)
		}
	}
	eval := func(js string, v any) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			raw, err := chromedp.Evaluate[json.RawMessage](js)(ctx, tg)
			if err != nil {
				return err
			}
			return json.Unmarshal(raw, v)
		})
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100: a PNG
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(artifacts, name), png, 0o644)
		})
	}
	// ready waits for the page to draw the detail of target.
	ready := func(target string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`!!(document.body.dataset.ready && window.probe.series && window.probe.series.target === %q && document.querySelector("#detail-title").textContent === %q)`, target, target))(ctx, tg)
			return err
		})
	}

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
	step("the page of slow",
		chromedp.Navigate(base+"/#target=slow"), ready("slow"),
		eval(`(() => {
			const u = window.probe.charts.tls, s = window.probe.series;
			return {
				api_points: s.t.length,
				chart_points: u.data[0].length,
				dots: u.data[6].filter(v => v != null).length,
				api_tls: s.phase_ms.tls.filter(v => v != null).length,
				median: u.data[5],
				labels: u.series.map(x => x.label),
				rows: [...document.querySelectorAll("#targets tbody tr")].map(r => [r.dataset.target, r.dataset.state]),
				waterfall: [...document.querySelectorAll("#waterfall .wf-row")].map(r => r.dataset.phase),
				canvas: !!document.querySelector(".chart canvas"),
			};
		})()`, &slow),
		shot("status-slow-light.png"),
		eval(a11yJS, &a11y[0]),
		// The last hour: the API's answer to range=1h.
		chromedp.Click(`.ranges button[data-range="1h"]`),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`!!(window.probe.series && new Date(window.probe.series.to) - new Date(window.probe.series.from) === 3600000)`)(ctx, tg)
			return err
		}),
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
	} else if m := medians[len(medians)/2]; m < 40 || m > 55 {
		t.Errorf("slow's tls median line sits at %.2f ms, want the lab's 40 ms delay (40-55)", m)
	}
	if !slices.Contains(slow.Labels, "median") || !slow.Canvas {
		t.Errorf("tls chart series %v, canvas drawn %v", slow.Labels, slow.Canvas)
	}
	if !slices.Contains(slow.Rows, [2]string{"slow", "ok"}) || !slices.Contains(slow.Rows, [2]string{"broken", "failing"}) {
		t.Errorf("target list rows = %v, want slow ok and broken failing", slow.Rows)
	}
	if !slices.Equal(slow.Waterfall, []string{"resolve", "connect", "tls"}) {
		t.Errorf("waterfall phases = %v, want resolve, connect, tls", slow.Waterfall)
	}

	// The broken target: failure marks, by class, on the charts of the
	// phases before the failure and the total.
	var broken struct {
		Classes   string   `json:"classes"`
		Labels    []string `json:"labels"`
		Marks     int      `json:"marks"`
		Failed    int      `json:"failed"`
		FailedRow string   `json:"failed_row"`
	}
	step("the page of broken",
		chromedp.Click(`#targets tr[data-target="broken"] a`), ready("broken"),
		eval(`(() => {
			const u = window.probe.charts.total, s = window.probe.series;
			const i = u.series.findIndex(x => x.label.startsWith("failure: "));
			return {
				classes: document.querySelector('.chart[data-phase="total"]').dataset.failureClasses,
				labels: u.series.map(x => x.label),
				marks: i < 0 ? 0 : u.data[i].filter(v => v != null).length,
				failed: s.class.filter(c => c !== "").length,
				failed_row: document.querySelector('#targets tr[data-target="broken"] td:nth-child(4)').textContent,
			};
		})()`, &broken),
		shot("status-broken-light.png"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}),
		chromedp.Click(`#targets tr[data-target="slow"] a`), ready("slow"),
		shot("status-slow-dark.png"),
		eval(a11yJS, &a11y[1]),
	)
	for i, scheme := range []string{"light", "dark"} {
		if len(a11y[i]) > 0 {
			t.Errorf("accessibility in the %s scheme:\n%s", scheme, strings.Join(a11y[i], "\n"))
		}
	}
	if broken.Classes != "tls.cert_expired" || !slices.Contains(broken.Labels, "failure: tls.cert_expired") {
		t.Errorf("broken's total chart: classes %q, series %v, want failure marks of tls.cert_expired", broken.Classes, broken.Labels)
	}
	if broken.Marks == 0 || broken.Marks != broken.Failed {
		t.Errorf("broken's total chart has %d failure marks, the API %d failed attempts", broken.Marks, broken.Failed)
	}
	if !strings.Contains(broken.FailedRow, "tls.cert_expired") {
		t.Errorf("broken's row says %q, want its class", broken.FailedRow)
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
	reportFile := filepath.Join(artifacts, "report.html")
	if err := os.WriteFile(reportFile, html, 0o644); err != nil {
		t.Fatal(err)
	}
	tab, cancelTab := chromedp.NewContext(browser)
	defer cancelTab()
	browser = tab                        // step runs in the tab
	tabMessages := chromedp.Console(tab) // a variable of its own: the first reader may not have started
	go func() {
		for m, err := range tabMessages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleException {
				mu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("report: %s: %s", m.Type, m.Text))
				mu.Unlock()
			}
		}
	}()
	var rep struct {
		Points  int        `json:"points"`
		Median  []*float64 `json:"median"`
		Classes string     `json:"classes"`
		Rows    int        `json:"rows"`
	}
	step("the HTML report",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}})
			return err
		}),
		chromedp.Navigate("file://"+reportFile), ready("slow"),
		eval(`(() => {
			const u = window.probe.charts.tls;
			return {points: u.data[0].length, median: u.data[5], rows: document.querySelectorAll("#targets tbody tr").length};
		})()`, &rep),
		shot("report-slow.png"),
		chromedp.Click(`#targets tr[data-target="broken"] a`), ready("broken"),
		eval(`({classes: document.querySelector('.chart[data-phase="total"]').dataset.failureClasses})`, &rep),
		shot("report-broken.png"),
	)
	if rep.Points != 5 || rep.Rows != 2 {
		t.Errorf("the report's tls chart of slow has %d points, its list %d rows; want 5 and 2", rep.Points, rep.Rows)
	}
	if len(rep.Median) > 2 {
		if m := rep.Median[2]; m == nil || *m < 40 || *m > 55 {
			t.Errorf("the report's tls median of slow = %v, want 40-55 ms", m)
		}
	}
	if rep.Classes != "tls.cert_expired" {
		t.Errorf("the report's failure classes of broken = %q, want tls.cert_expired", rep.Classes)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
	t.Logf("screenshots in %s", artifacts)
}

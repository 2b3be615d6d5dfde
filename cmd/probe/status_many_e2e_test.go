package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/probe-dev/probe/internal/lab"
)

// manyTargets is the number of targets of TestStatusPageMany; one in ten
// fails.
const manyTargets = 1000

// The bounds TestStatusPageMany holds the page of manyTargets to, on a
// machine as busy as CI's: generous, for a person waiting at a browser, not
// a benchmark.
const (
	// manyListMS bounds the time from the start of the page's navigation
	// to its list of every target drawn.
	manyListMS = 5000
	// manyHeapBytes bounds the page's JavaScript heap after a collection.
	manyHeapBytes = 32 << 20
	// manyTargetBytes bounds /api/v1/targets's bytes per target (names of
	// seven characters).
	manyTargetBytes = 200
)

// TestStatusPageMany opens the status page of probe serve probing 1,000
// targets (a name each in a wildcard zone of a DNS server of its own, a
// TCP dial to the lab, every tenth to a closed port) in Debian's headless
// Chromium: the list draws all of them within manyListMS, the JavaScript
// heap stays under manyHeapBytes, /api/v1/targets under manyTargetBytes a
// target, and the filter by name and state narrows the list to one target
// whose charts draw the API's attempts with their failure marks. It logs
// the figures; screenshots go to the artifact directory.
func TestStatusPageMany(t *testing.T) {
	dns, err := lab.StartDNS("many.test.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	dns.AddAddr("*", netip.MustParseAddr("127.0.0.1"))
	tcp, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })
	file := writeFile(t, "many.hcl", fmt.Sprintf(`
resolver "many" {
  plugin  = "dns-miekg"
  servers = [%q]
  timeout = "2s"
}

dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.many]
  dialer    = dialer.tcp
}

schedule { every = "2s" }

target "t" {
  for_each = toset([for i in range(%d) : format("%%04d", i)])
  host     = "h${each.key}.many.test"
  port     = tonumber(each.key) %% 10 == 9 ? %d : %d
  pipeline = pipeline.tcp
}
`, dns.Addr, manyTargets, testLab.Refused.Port(), tcp.Addr.Port()))
	srv := startServe(t, file)
	base := "http://" + srv.addr

	// Every target probed, the one the test picks three times.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ts := apiTargets(t, base)
		pending := 0
		for _, tg := range ts {
			if tg.State == "pending" {
				pending++
			}
		}
		if len(ts) == manyTargets && pending == 0 && ts["t[0049]"].Points >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d targets, %d pending, t[0049] has %d attempts", len(ts), pending, ts["t[0049]"].Points)
		}
		time.Sleep(250 * time.Millisecond)
	}
	resp, err := http.Get(base + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	perTarget := float64(len(body)) / manyTargets
	if perTarget > manyTargetBytes {
		t.Errorf("/api/v1/targets is %d bytes for %d targets, %.0f a target; want at most %d", len(body), manyTargets, perTarget, manyTargetBytes)
	}

	b := startBrowser(t)
	var first struct {
		Drawn    []string `json:"drawn"`
		RowCount string   `json:"rowcount"`
		Summary  string   `json:"summary"`
		ListMS   float64  `json:"list_ms"`
		ChartsMS float64  `json:"charts_ms"`
		LoadedMS float64  `json:"loaded_ms"`
		RedrawMS float64  `json:"redraw_ms"`
		DOMNodes int      `json:"dom_nodes"`
	}
	// The rows a person scrolling the list from its top to its end sees.
	var seen struct {
		Names  []string       `json:"names"`
		States map[string]int `json:"states"`
		Steps  int            `json:"steps"`
		MS     float64        `json:"ms"`
	}
	var heap runtime.GetHeapUsageResult
	metrics := map[string]float64{}
	b.step("the page of 1,000 targets",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{})
			return err
		}),
		chromedp.Navigate(base+"/"), ready("t[0000]"),
		evalJS(`(() => {
			const drawn = [...document.querySelectorAll("#targets tbody tr[data-target]")].map(r => r.dataset.target);
			// Draw the list again as a filter does, layout included.
			const t0 = performance.now();
			document.querySelector("#filter-name").dispatchEvent(new Event("input"));
			document.querySelector("#targets").offsetHeight;
			return {
				drawn,
				rowcount: document.querySelector("#targets").getAttribute("aria-rowcount"),
				summary: document.querySelector("#summary").textContent,
				list_ms: window.probe.timings.targets,
				charts_ms: window.probe.timings.charts,
				loaded_ms: performance.getEntriesByType("navigation")[0].loadEventEnd,
				redraw_ms: performance.now() - t0,
				dom_nodes: document.getElementsByTagName("*").length,
			};
		})()`, &first),
		b.shot("status-many-list.png"),
	)
	b.step("scrolling the list",
		evalJS(`(async () => {
			const box = document.querySelector("#list"), names = [], states = {};
			const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
			const t0 = performance.now();
			let steps = 0;
			box.scrollTop = 0;
			for (; steps < 5000; steps++) {
				await frame();
				const view = box.getBoundingClientRect();
				for (const r of box.querySelectorAll("#targets tbody tr[data-target]")) {
					const rect = r.getBoundingClientRect();
					if (rect.top >= view.top && rect.bottom <= view.bottom && r.dataset.target > (names[names.length - 1] || "")) {
						names.push(r.dataset.target);
						states[r.dataset.state] = (states[r.dataset.state] || 0) + 1;
					}
				}
				if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) break;
				box.scrollTop += box.clientHeight * 0.9;
			}
			const ms = performance.now() - t0;
			box.scrollTop = 0;
			await frame();
			return {names, states, steps, ms};
		})()`, &seen, chromedp.EvalAwaitPromise),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
				return err
			}
			var err error
			if heap, err = chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{}); err != nil {
				return err
			}
			m, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
			for _, x := range m.Metrics {
				metrics[x.Name] = x.Value
			}
			return err
		}),
	)
	if len(first.Drawn) == 0 || first.Drawn[0] != "t[0000]" || len(first.Drawn) > 200 || first.RowCount != fmt.Sprint(manyTargets+1) {
		t.Errorf("the list drew %d rows from %v, aria-rowcount %s; want the first ones of %d from t[0000], not all",
			len(first.Drawn), first.Drawn[:min(1, len(first.Drawn))], first.RowCount, manyTargets)
	}
	if want := fmt.Sprintf("%d targets: %d ok, %d failing;", manyTargets, manyTargets*9/10, manyTargets/10); !strings.HasPrefix(first.Summary, want) {
		t.Errorf("the summary says %q, want %q", first.Summary, want)
	}
	// Scrolled through, the list shows every target once, in order.
	want := make([]string, manyTargets)
	for i := range want {
		want[i] = fmt.Sprintf("t[%04d]", i)
	}
	if !slices.Equal(seen.Names, want) || seen.States["ok"] != manyTargets*9/10 || seen.States["failing"] != manyTargets/10 {
		t.Errorf("scrolling the list in %d steps showed %d rows (%v … %v), states %v; want the %d targets in order, %d ok and %d failing",
			seen.Steps, len(seen.Names), seen.Names[:min(3, len(seen.Names))], seen.Names[max(0, len(seen.Names)-3):], seen.States,
			manyTargets, manyTargets*9/10, manyTargets/10)
	}
	if first.ListMS <= 0 || first.ListMS > manyListMS {
		t.Errorf("the list of %d targets was drawn %.0f ms after the navigation began; want within %d ms", manyTargets, first.ListMS, manyListMS)
	}
	if heap.UsedSize <= 0 || heap.UsedSize > manyHeapBytes {
		t.Errorf("the page's JavaScript heap is %.1f MB after a collection; want at most %d MB", heap.UsedSize/(1<<20), manyHeapBytes>>20)
	}

	// The filter: by state, then by name, to one failing target, whose
	// charts draw.
	var filtered struct {
		Failing  []string `json:"failing"`
		RowCount string   `json:"rowcount"`
		One      []string `json:"one"`
		Points   int      `json:"points"`
		APIPts   int      `json:"api_points"`
	}
	drawnRows := `[...document.querySelectorAll("#targets tbody tr[data-target]")].map(r => r.dataset.target + " " + r.dataset.state)`
	var marks chartMarks
	b.step("the filter",
		chromedp.SetValue(`#filter-state`, "failing"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.querySelector("#filter-state").dispatchEvent(new Event("change"))`)(ctx, tg)
			return err
		}),
		evalJS(drawnRows, &filtered.Failing),
		evalJS(`document.querySelector("#targets").getAttribute("aria-rowcount")`, &filtered.RowCount),
		chromedp.SendKeys(`#filter-name`, "0049"),
		poll(`document.querySelectorAll("#targets tbody tr[data-target]").length === 1`),
		evalJS(drawnRows, &filtered.One),
		chromedp.Click(`#targets tr[data-target="t[0049]"] a`), ready("t[0049]"),
		evalJS(`window.probe.charts.connect.data[0].length`, &filtered.Points),
		evalJS(`window.probe.series.t.length`, &filtered.APIPts),
		evalJS(marksJS, &marks),
		b.shot("status-many-filtered.png"),
	)
	if filtered.RowCount != fmt.Sprint(manyTargets/10+1) || len(filtered.Failing) == 0 {
		t.Errorf("the state filter failing: aria-rowcount %s, %d rows drawn; want %d, some", filtered.RowCount, len(filtered.Failing), manyTargets/10+1)
	}
	for _, r := range filtered.Failing {
		if !strings.HasSuffix(r, "9] failing") {
			t.Errorf("the state filter failing draws %q", r)
			break
		}
	}
	if len(filtered.One) != 1 || filtered.One[0] != "t[0049] failing" {
		t.Errorf("the filters failing and 0049 leave %v, want t[0049] failing", filtered.One)
	}
	if filtered.Points != filtered.APIPts || filtered.Points < 3 {
		t.Errorf("t[0049]'s connect chart has %d points, the API returned %d; want the same, 3 or more", filtered.Points, filtered.APIPts)
	}
	marks.check(t, "t[0049]", "tcp.refused")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", errs)
	}
	t.Logf("%d targets: /api/v1/targets %d bytes (%.0f a target); list drawn %.0f ms and first charts %.0f ms after the navigation began (load event %.0f ms); "+
		"the list drawn again %.1f ms; %d DOM nodes; scrolled through in %d steps, %.0f ms; JS heap %.1f MB used after a collection (%.1f MB allocated); "+
		"Chromium's metrics: layout %.0f ms, style %.0f ms, script %.0f ms",
		manyTargets, len(body), perTarget, first.ListMS, first.ChartsMS, first.LoadedMS, first.RedrawMS, first.DOMNodes, seen.Steps, seen.MS,
		heap.UsedSize/(1<<20), heap.TotalSize/(1<<20), 1000*metrics["LayoutDuration"], 1000*metrics["RecalcStyleDuration"], 1000*metrics["ScriptDuration"])
}

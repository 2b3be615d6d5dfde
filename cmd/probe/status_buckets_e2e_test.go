package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// bucketsSeries is /api/v1/series with its buckets, as the test reads it.
type bucketsSeries struct {
	T       []float64 `json:"t"`
	Buckets *struct {
		Seconds   float64                `json:"seconds"`
		Quantiles []float64              `json:"quantiles"`
		T         []float64              `json:"t"`
		Attempts  []int                  `json:"attempts"`
		Failures  []int                  `json:"failures"`
		Class     []string               `json:"class"`
		TotalMS   [][]float64            `json:"total_ms"`
		PhaseMS   map[string][][]float64 `json:"phase_ms"`
	} `json:"buckets"`
}

func apiSeries(t *testing.T, base, target string) bucketsSeries {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/series?target=" + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s bucketsSeries
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStatusPageBuckets runs probe serve with a history that keeps the
// last 3 seconds' attempts one by one and the older ones of its minute in
// buckets (of 400 ms: four attempts' worth at every 100 ms), then checks
// what the API returns of them (counts, failures and their class, ordered
// quantiles, the delayed target's median at the lab's 40 ms, the buckets
// ending where the attempts kept whole begin) and what the page draws in
// Debian's headless Chromium: a point per bucket and per attempt, each
// bucket's median and bands the API's, failure marks on the buckets that
// failed. Screenshots go to the test's artifact directory.
func TestStatusPageBuckets(t *testing.T) {
	file := statusFileWith(t, `
schedule {
  every           = "100ms"
  retain          = "1m"
  retain_attempts = "3s"
}`)
	srv := startServe(t, file)
	base := "http://" + srv.addr
	var slow, broken bucketsSeries
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		slow, broken = apiSeries(t, base, "slow"), apiSeries(t, base, "broken")
		if slow.Buckets != nil && len(slow.Buckets.T) >= 8 && broken.Buckets != nil && len(broken.Buckets.T) >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 8 buckets of each target after 60s: slow %+v, broken %+v", slow.Buckets, broken.Buckets)
		}
	}

	for name, s := range map[string]bucketsSeries{"slow": slow, "broken": broken} {
		b := s.Buckets
		if b.Seconds != 0.4 || !slices.Equal(b.Quantiles, []float64{0.1, 0.25, 0.5, 0.75, 0.9}) {
			t.Errorf("%s: buckets of %v s, quantiles %v; want 0.4 s and 0.1 to 0.9", name, b.Seconds, b.Quantiles)
		}
		if end := b.T[len(b.T)-1] + b.Seconds; len(s.T) == 0 || end > s.T[0]+0.001 {
			t.Errorf("%s: the last bucket ends at %.3f, after the first attempt kept whole (%v)", name, end, s.T)
		}
		for i, at := range b.T {
			if i > 0 && at <= b.T[i-1] {
				t.Errorf("%s: bucket %d starts at %.3f, not after the one before (%.3f)", name, i, at, b.T[i-1])
			}
			// Four attempts' worth each; a round late on a busy machine
			// makes fewer, and rounds late one after the other run back
			// to back, at most one each 40 ms (slow's TLS delay).
			if n := b.Attempts[i]; n < 1 || n > 10 {
				t.Errorf("%s: bucket %d has %d attempts, want about 4", name, i, n)
			}
			for col, qs := range map[string][][]float64{"total": b.TotalMS, "tls": b.PhaseMS["tls"]} {
				if q := qs[i]; len(q) != 5 || !slices.IsSorted(q) || q[0] <= 0 {
					t.Errorf("%s: bucket %d's %s quantiles %v, want five, rising", name, i, col, q)
				}
			}
		}
	}
	for i := range slow.Buckets.T {
		if f := slow.Buckets.Failures[i]; f != 0 {
			t.Errorf("slow: bucket %d has %d failures, want none", i, f)
		}
		// The lab's delay is a floor; above it, the machine's load adds
		// what it will (other tests run beside this one).
		if m := slow.Buckets.PhaseMS["tls"][i][2]; m < 40 || m > 100 {
			t.Errorf("slow: bucket %d's tls median %.2f ms, want the lab's 40 ms delay (40-100)", i, m)
		}
	}
	for i := range broken.Buckets.T {
		if f, n, c := broken.Buckets.Failures[i], broken.Buckets.Attempts[i], broken.Buckets.Class[i]; f != n || c != "tls.cert_expired" {
			t.Errorf("broken: bucket %d has %d failures of %d attempts, mostly %q; want all, tls.cert_expired", i, f, n, c)
		}
	}

	b := startBrowser(t)
	type drawn struct {
		Buckets int         `json:"buckets"`
		Raw     int         `json:"raw"`
		Points  int         `json:"points"`
		Dots    int         `json:"dots"`
		Median  []*float64  `json:"median"`
		API     [][]float64 `json:"api"`
		Marks   int         `json:"marks"`
		Failed  int         `json:"failed"`
		Label   string      `json:"label"`
		Summary string      `json:"summary"`
		Meta    string      `json:"meta"`
	}
	// What the tls chart drew of the series the page got.
	const drawnJS = `(() => {
		const u = window.probe.charts.tls, s = window.probe.series, b = s.buckets || {t: [], class: [], phase_ms: {tls: []}};
		let marks = 0;
		u.series.forEach((ser, k) => {
			if (ser.label.startsWith("failure: ")) marks += u.data[k].filter(v => v != null).length;
		});
		return {
			buckets: b.t.length, raw: s.t.length, points: u.data[0].length,
			dots: u.data[6].filter(v => v != null).length,
			median: u.data[5].slice(0, b.t.length), api: b.phase_ms.tls,
			marks, failed: b.class.filter(c => c).length + s.class.filter(c => c).length,
			label: u.root.parentElement.getAttribute("aria-label"),
			summary: document.querySelector("#summary").textContent,
			meta: document.querySelector("#detail-meta").textContent,
		};
	})()`
	var slowDrawn, brokenDrawn drawn
	b.step("the buckets of slow and broken",
		chromedp.Navigate(base+"/#target=slow"), ready("slow"),
		evalJS(drawnJS, &slowDrawn),
		b.shot("status-buckets-slow.png"),
		chromedp.Click(`#targets tr[data-target="broken"] a`), ready("broken"),
		evalJS(drawnJS, &brokenDrawn),
		b.shot("status-buckets-broken.png"),
	)
	for name, d := range map[string]drawn{"slow": slowDrawn, "broken": brokenDrawn} {
		if d.Buckets < 8 || d.Points != d.Buckets+d.Raw || d.Dots > d.Raw {
			t.Errorf("%s: the tls chart has %d points and %d dots for %d buckets and %d attempts; want a point each, dots only for attempts",
				name, d.Points, d.Dots, d.Buckets, d.Raw)
		}
	}
	for i, m := range slowDrawn.Median {
		if want := slowDrawn.API[i][2]; m == nil || *m != want {
			t.Errorf("slow: the median line at bucket %d is %v, the API's median %v", i, m, want)
		}
	}
	if want := "history kept 1 min in memory"; !strings.Contains(slowDrawn.Summary, want) {
		t.Errorf("the page's summary %q, want it to say %q", slowDrawn.Summary, want)
	}
	if want := "older ones in buckets of 0.4 s"; !strings.Contains(slowDrawn.Meta, want) {
		t.Errorf("slow's detail says %q, want it to say %q", slowDrawn.Meta, want)
	}
	if slowDrawn.Marks != 0 {
		t.Errorf("slow: %d failure marks, want none", slowDrawn.Marks)
	}
	if brokenDrawn.Marks != brokenDrawn.Failed || brokenDrawn.Marks < brokenDrawn.Buckets {
		t.Errorf("broken: %d failure marks for %d buckets and attempts that failed (%d buckets); want one each", brokenDrawn.Marks, brokenDrawn.Failed, brokenDrawn.Buckets)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%v", errs)
	}
	t.Logf("slow's tls chart: %s", slowDrawn.Label)
}

package status

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/history"
	"github.com/probe-dev/probe/core/sdk"
)

// get answers path from h, decoding JSON into v; it returns the status.
func get(t *testing.T, h http.Handler, path string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
	}
	return rec.Code
}

func TestAPI(t *testing.T) {
	hist := history.New(time.Hour, time.Second)
	hist.Retain([]string{"slow", "broken[x]", "new"})
	now := time.Now()
	for i := range 5 {
		_ = hist.Attempt(&engine.Attempt{Target: "slow", Started: now.Add(time.Duration(i-5) * time.Second), OK: true, Total: 30 * time.Millisecond,
			Phases: []engine.Phase{{Name: "resolve", Duration: time.Millisecond, OK: true},
				{Name: "connect", Start: time.Millisecond, Duration: 20 * time.Millisecond, OK: true,
					Attrs: map[string]any{"cert_not_after": now.Add(48 * time.Hour).Format(time.RFC3339)}}}})
	}
	_ = hist.Attempt(&engine.Attempt{Target: "broken[x]", Started: now.Add(-2 * time.Hour), OK: true})
	_ = hist.Attempt(&engine.Attempt{Target: "broken[x]", Started: now.Add(-time.Second), Total: time.Millisecond,
		Phases:  []engine.Phase{{Name: "resolve", Duration: time.Millisecond}},
		Failure: &sdk.Failure{Phase: "resolve", Class: "nxdomain", Message: "no such host"}})
	h := Handler(func() *history.History { return hist })

	var ts struct{ Targets []targetJSON }
	if code := get(t, h, "/api/v1/targets", &ts); code != 200 || len(ts.Targets) != 3 {
		t.Fatalf("targets: %d %+v", code, ts)
	}
	slow, broken, pending := ts.Targets[0], ts.Targets[1], ts.Targets[2]
	if slow.State != "ok" || slow.Points != 5 || *slow.TotalMS != 30 || slow.CertDaysLeft == nil || *slow.CertDaysLeft != 2 {
		t.Errorf("slow = %+v", slow)
	}
	if broken.State != "failing" || broken.Class != "nxdomain" || broken.Phase != "resolve" || broken.CertDaysLeft != nil {
		t.Errorf("broken = %+v", broken)
	}
	if pending.State != "pending" || pending.Since != "" {
		t.Errorf("new = %+v", pending)
	}
	if get(t, h, "/api/v1/targets?state=failing&name=BROK", &ts); len(ts.Targets) != 1 || ts.Targets[0].Name != "broken[x]" {
		t.Errorf("filtered: %+v", ts.Targets)
	}

	var s seriesJSON
	if code := get(t, h, "/api/v1/series?target=slow&range=1h", &s); code != 200 || len(s.T) != 5 || len(s.PhaseMS["connect"]) != 5 || *s.PhaseMS["connect"][4] != 20 || s.Buckets != nil {
		t.Errorf("series: %d %+v", code, s)
	}
	// The 2h-old attempt is past the retention; the failed one has no
	// connect.
	get(t, h, "/api/v1/series?target="+"broken%5Bx%5D", &s)
	if len(s.T) != 1 || s.Class[0] != "nxdomain" || len(s.Phases) != 1 {
		t.Errorf("broken's series: %+v", s)
	}

	var l struct {
		TotalMS float64 `json:"total_ms"`
		Phases  []phaseJSON
		Failure *failureJSON
	}
	if get(t, h, "/api/v1/latest?target=slow", &l); l.TotalMS != 30 || len(l.Phases) != 2 || l.Phases[1].StartMS != 1 || l.Phases[1].DurationMS != 20 {
		t.Errorf("latest: %+v", l)
	}
	if get(t, h, "/api/v1/latest?target=broken%5Bx%5D", &l); l.Failure == nil || l.Failure.Class != "nxdomain" {
		t.Errorf("broken's latest: %+v", l)
	}

	for path, want := range map[string]int{
		"/api/v1/series?target=nope":          404,
		"/api/v1/series?target=slow&range=2d": 400,
		"/api/v1/targets?state=sad":           400,
		"/api/v1/latest?target=new":           404,
		"/api/v1/nope":                        404,
	} {
		var e struct{ Error string }
		if code := get(t, h, path, &e); code != want || e.Error == "" {
			t.Errorf("%s: %d %q, want %d with an error", path, code, e.Error, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/assets/uplot/uPlot.iife.min.js", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "uPlot") {
		t.Errorf("uPlot asset: %d", rec.Code)
	}
}

// TestAPIBuckets checks the buckets of /api/v1/series: the attempts older
// than those kept one by one, each bucket's count, failures and class, and
// its quantiles per phase in milliseconds.
func TestAPIBuckets(t *testing.T) {
	hist := history.NewWith(history.Options{Retain: 10 * time.Minute, Attempts: time.Minute, Every: time.Second})
	now := time.Now()
	base := time.UnixMilli(now.UnixMilli() - now.UnixMilli()%4000).Add(-300 * time.Second)
	for i := range 300 {
		a := &engine.Attempt{Target: "a", Started: base.Add(time.Duration(i) * time.Second), OK: i%4 != 0, Total: 2 * time.Millisecond,
			Phases: []engine.Phase{{Name: "resolve", Duration: time.Duration(1+i%4) * time.Millisecond, OK: true}}}
		if !a.OK {
			a.Failure = &sdk.Failure{Phase: "resolve", Class: "nxdomain"}
		}
		_ = hist.Attempt(a)
	}
	h := Handler(func() *history.History { return hist })
	var s seriesJSON
	if code := get(t, h, "/api/v1/series?target=a", &s); code != 200 || s.Buckets == nil {
		t.Fatalf("series: %d, buckets %v", code, s.Buckets)
	}
	b := s.Buckets
	if b.Seconds != 4 || len(b.Quantiles) != 5 || len(b.T) != 59 || len(b.Attempts) != 59 || len(b.TotalMS) != 59 || len(b.PhaseMS["resolve"]) != 59 {
		t.Fatalf("buckets: %+v", b)
	}
	if b.T[len(b.T)-1]+b.Seconds > s.T[0] {
		t.Errorf("the last bucket ends at %v, after the first attempt kept one by one, %v", b.T[len(b.T)-1]+b.Seconds, s.T[0])
	}
	// Each bucket: four attempts, the first failing; resolve took 1, 2, 3
	// and 4 ms.
	want := []float64{1.3, 1.75, 2.5, 3.25, 3.7}
	for i := range b.T {
		if b.Attempts[i] != 4 || b.Failures[i] != 1 || b.Class[i] != "nxdomain" || !slices.Equal(b.PhaseMS["resolve"][i], want) || b.TotalMS[i][2] != 2 {
			t.Errorf("bucket %d: %d attempts, %d failures (%s), resolve %v, total %v; want 4, 1 (nxdomain), %v and 2 ms",
				i, b.Attempts[i], b.Failures[i], b.Class[i], b.PhaseMS["resolve"][i], b.TotalMS[i], want)
		}
	}
}

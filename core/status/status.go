// Package status is the status page of `probe serve` and the JSON API it
// reads (docs/output.md): every target's state, and per target the history
// of its scheduled attempts (core/history) per phase, its latest attempt's
// waterfall and its certificate's days left. The page, its script and the
// charting library (uPlot, vendored by `make uplot`) are embedded: it needs
// no network beyond the server. core/exporter serves it.
package status

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/history"
)

//go:embed assets
var assets embed.FS

// ranges are the time ranges the API and the page offer, by name; "all" is
// the whole retention.
var ranges = map[string]time.Duration{"1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour}

// Handler serves the page at / (index.html), its assets under /assets/ and
// the API under /api/v1/, from the history current returns at each request.
func Handler(current func() *history.History) http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree has the folder
	}
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
		http.ServeFileFS(w, r, static, "index.html")
	})
	api := api{current}
	mux.HandleFunc("GET /api/v1/targets", api.targets)
	mux.HandleFunc("GET /api/v1/series", api.series)
	mux.HandleFunc("GET /api/v1/latest", api.latest)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, _ *http.Request) {
		fail(w, http.StatusNotFound, "no such endpoint: see /api/v1/targets, /api/v1/series?target=NAME, /api/v1/latest?target=NAME")
	})
	return mux
}

type api struct{ current func() *history.History }

// targetJSON is a target in /api/v1/targets.
type targetJSON struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Since is RFC 3339; absent when pending.
	Since string `json:"since,omitempty"`
	Class string `json:"class,omitempty"`
	Phase string `json:"phase,omitempty"`
	Last  string `json:"last,omitempty"`
	// TotalMS is the latest attempt's duration.
	TotalMS *float64 `json:"total_ms,omitempty"`
	// CertDaysLeft is the days left before the leaf certificate last seen
	// expires (negative once expired); absent without one.
	CertDaysLeft *float64 `json:"cert_days_left,omitempty"`
	Points       int      `json:"points"`
}

func (a api) targets(w http.ResponseWriter, r *http.Request) {
	state, name := r.URL.Query().Get("state"), r.URL.Query().Get("name")
	if state != "" && state != string(history.StateOK) && state != string(history.StateFailing) && state != string(history.StatePending) {
		fail(w, http.StatusBadRequest, fmt.Sprintf("state %q: want ok, failing or pending", state))
		return
	}
	send(w, targetsDoc(a.current(), name, state))
}

// targetsDoc is /api/v1/targets: h's targets whose name holds name (in any
// case) and, unless state is "", in that state.
func targetsDoc(h *history.History, name, state string) map[string]any {
	name = strings.ToLower(name)
	now := time.Now()
	out := []targetJSON{}
	for _, t := range h.Targets() {
		if state != "" && string(t.State) != state || !strings.Contains(strings.ToLower(t.Name), name) {
			continue
		}
		j := targetJSON{Name: t.Name, State: string(t.State), Class: t.Class, Phase: t.Phase, Points: t.Points}
		if t.State != history.StatePending {
			j.Since, j.Last = t.Since.UTC().Format(time.RFC3339Nano), t.Last.UTC().Format(time.RFC3339Nano)
			j.TotalMS = ms(t.Total)
		}
		if !t.CertNotAfter.IsZero() {
			days := math.Round(t.CertNotAfter.Sub(now).Hours()/24*10) / 10
			j.CertDaysLeft = &days
		}
		out = append(out, j)
	}
	return map[string]any{"retain_seconds": h.Retention().Seconds(), "targets": out}
}

// seriesJSON is /api/v1/series: a target's attempts as columns.
type seriesJSON struct {
	Target string `json:"target"`
	From   string `json:"from"`
	To     string `json:"to"`
	// T is when each attempt started, in seconds since the Unix epoch.
	T       []float64 `json:"t"`
	TotalMS []float64 `json:"total_ms"`
	// Class is each attempt's failure class, "" when ok.
	Class  []string `json:"class"`
	Phases []string `json:"phases"`
	// PhaseMS has, per phase, each attempt's duration, null where the phase
	// did not run.
	PhaseMS map[string][]*float64 `json:"phase_ms"`
	// Buckets are the older attempts of the range, per bucket of time;
	// absent when there are none.
	Buckets *bucketsJSON `json:"buckets,omitempty"`
}

// bucketsJSON is the buckets of /api/v1/series (core/history's Buckets).
type bucketsJSON struct {
	// Seconds is the span of every bucket.
	Seconds float64 `json:"seconds"`
	// Quantiles are the quantiles of each bucket's durations, in order.
	Quantiles []float64 `json:"quantiles"`
	// T is when each bucket begins, in seconds since the Unix epoch.
	T        []float64 `json:"t"`
	Attempts []int     `json:"attempts"`
	Failures []int     `json:"failures"`
	// Class is each bucket's most frequent failure class; "" without
	// failures.
	Class []string `json:"class"`
	// TotalMS has, per bucket, the quantiles of its attempts' durations;
	// null for a bucket without one.
	TotalMS [][]float64 `json:"total_ms"`
	// PhaseMS has, per phase and bucket, the quantiles of the phase's
	// durations; null where it did not run.
	PhaseMS map[string][][]float64 `json:"phase_ms"`
}

func (a api) series(w http.ResponseWriter, r *http.Request) {
	h := a.current()
	q := r.URL.Query()
	name := q.Get("target")
	to := time.Now()
	from := to.Add(-h.Retention())
	switch rng := q.Get("range"); {
	case rng == "" || rng == "all":
	case ranges[rng] > 0:
		from = to.Add(-ranges[rng])
	default:
		fail(w, http.StatusBadRequest, fmt.Sprintf("range %q: want 1h, 6h, 24h or all", rng))
		return
	}
	out, ok := seriesDoc(h, name, from, to)
	if !ok {
		fail(w, http.StatusNotFound, fmt.Sprintf("no target %q", name))
		return
	}
	send(w, out)
}

// seriesDoc is /api/v1/series: the attempts of target name in [from, to];
// false when h does not know it.
func seriesDoc(h *history.History, name string, from, to time.Time) (*seriesJSON, bool) {
	s, ok := h.Series(name, from, to.Add(time.Millisecond))
	if !ok {
		return nil, false
	}
	out := &seriesJSON{Target: name, From: from.UTC().Format(time.RFC3339), To: to.UTC().Format(time.RFC3339),
		T: []float64{}, TotalMS: []float64{}, Class: s.Class, Phases: s.Phases, PhaseMS: map[string][]*float64{}}
	if out.Class == nil {
		out.Class = []string{}
	}
	for i, t := range s.Started {
		out.T = append(out.T, float64(t.UnixMilli())/1000)
		out.TotalMS = append(out.TotalMS, *ms(s.Total[i]))
	}
	for p, phase := range s.Phases {
		col := make([]*float64, len(s.Started))
		for i, d := range s.Durations[p] {
			if d >= 0 {
				col[i] = ms(d)
			}
		}
		out.PhaseMS[phase] = col
	}
	if b := s.Buckets; b != nil {
		out.Buckets = &bucketsJSON{Seconds: b.Width.Seconds(), Quantiles: history.Quantiles[:], Attempts: b.Attempts,
			Failures: b.Failures, Class: b.Class, TotalMS: quantilesMS(b.Total), PhaseMS: map[string][][]float64{}}
		for _, t := range b.Start {
			out.Buckets.T = append(out.Buckets.T, float64(t.UnixMilli())/1000)
		}
		for p, phase := range s.Phases {
			out.Buckets.PhaseMS[phase] = quantilesMS(b.Durations[p])
		}
	}
	return out, true
}

// quantilesMS returns each bucket's quantiles in milliseconds, nil for a
// bucket without them.
func quantilesMS(qs [][len(history.Quantiles)]time.Duration) [][]float64 {
	out := make([][]float64, len(qs))
	for i, q := range qs {
		if q[0] < 0 {
			continue
		}
		out[i] = make([]float64, len(q))
		for k, d := range q {
			out[i][k] = *ms(d)
		}
	}
	return out
}

// phaseJSON is a phase of /api/v1/latest's waterfall.
type phaseJSON struct {
	Name       string  `json:"name"`
	Plugin     string  `json:"plugin"`
	StartMS    float64 `json:"start_ms"`
	DurationMS float64 `json:"duration_ms"`
	OK         bool    `json:"ok"`
}

// failureJSON is why an attempt failed.
type failureJSON struct {
	Phase   string `json:"phase"`
	Class   string `json:"class"`
	Message string `json:"message"`
}

// latestJSON is /api/v1/latest: a target's latest attempt.
type latestJSON struct {
	Target  string       `json:"target"`
	Started string       `json:"started"`
	Address string       `json:"address,omitempty"`
	TotalMS float64      `json:"total_ms"`
	OK      bool         `json:"ok"`
	Failure *failureJSON `json:"failure,omitempty"`
	Phases  []phaseJSON  `json:"phases"`
}

func (a api) latest(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("target")
	out := latestDoc(a.current(), name)
	if out == nil {
		fail(w, http.StatusNotFound, fmt.Sprintf("no attempt of target %q", name))
		return
	}
	send(w, out)
}

// latestDoc is /api/v1/latest: target name's latest attempt; nil without
// one.
func latestDoc(h *history.History, name string) *latestJSON {
	at := h.Latest(name)
	if at == nil {
		return nil
	}
	out := &latestJSON{Target: at.Target, Started: at.Started.UTC().Format(time.RFC3339Nano), TotalMS: *ms(at.Total), OK: at.OK, Phases: []phaseJSON{}}
	if at.Address.IsValid() {
		out.Address = at.Address.String()
	}
	if f := at.Failure; f != nil {
		out.Failure = &failureJSON{Phase: f.Phase, Class: string(f.Class), Message: f.Message}
	}
	for _, p := range at.Phases {
		out.Phases = append(out.Phases, phaseJSON{Name: p.Name, Plugin: p.Plugin, StartMS: *ms(p.Start), DurationMS: *ms(p.Duration), OK: p.OK})
	}
	return out
}

// ms returns d in milliseconds, to the microsecond.
func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000
	return &v
}

func send(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // a write error is the client's going
}

func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

package history

import (
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// attempt returns an attempt of target started at t, with phases resolve,
// connect and tls of ms milliseconds each, failing in tls with class when
// class is not "".
func attempt(target string, t time.Time, ms int, class sdk.Class) *engine.Attempt {
	d := time.Duration(ms) * time.Millisecond
	a := &engine.Attempt{Target: target, Started: t, OK: class == "", Total: 3 * d, Phases: []engine.Phase{
		{Name: "resolve", Duration: d, OK: true},
		{Name: "connect", Start: d, Duration: d, OK: true},
		{Name: "tls", Start: 2 * d, Duration: d, OK: class == "",
			Attrs: map[string]any{"cert_not_after": "2030-01-02T03:04:05Z"}},
	}}
	if class != "" {
		a.Failure = &sdk.Failure{Phase: "tls", Class: class, Message: "x"}
	}
	return a
}

func TestRingKeepsTheRetainedAttempts(t *testing.T) {
	h := New(time.Minute, 10*time.Second) // 6 per minute, plus 2
	h.Retain([]string{"b", "a"})
	now := time.Now()
	for i := range 20 {
		var class sdk.Class
		if i >= 17 {
			class = "timeout"
		}
		if err := h.Attempt(attempt("a", now.Add(time.Duration(i-19)*time.Second), i+1, class)); err != nil {
			t.Fatal(err)
		}
	}
	s, ok := h.Series("a", time.Time{}, now.Add(time.Second))
	if !ok {
		t.Fatal("a unknown")
	}
	if len(s.Started) != 8 {
		t.Fatalf("kept %d attempts, want the ring's 8", len(s.Started))
	}
	// The newest 8: i = 12..19, oldest first.
	for k, d := range s.Durations[0] {
		if want := time.Duration(13+k) * time.Millisecond; d != want {
			t.Errorf("resolve[%d] = %v, want %v", k, d, want)
		}
	}
	if got := s.Class[7]; got != "timeout" {
		t.Errorf("class of the last = %q, want timeout", got)
	}
	if got := s.Class[4]; got != "" {
		t.Errorf("class of an ok one = %q", got)
	}
	if s.Total[7] != 60*time.Millisecond {
		t.Errorf("total of the last = %v, want 60ms", s.Total[7])
	}
	// A time range selects.
	s, _ = h.Series("a", now.Add(-3*time.Second), now.Add(time.Second))
	if len(s.Started) != 4 {
		t.Errorf("last 3s: %d attempts, want 4", len(s.Started))
	}
	ts := h.Targets()
	if len(ts) != 2 || ts[0].Name != "b" || ts[0].State != StatePending || ts[1].Name != "a" {
		t.Fatalf("targets = %+v", ts)
	}
	a := ts[1]
	if a.State != StateFailing || a.Class != "timeout" || a.Phase != "tls" || !a.Since.Equal(now.Add(-2*time.Second)) {
		t.Errorf("a = %+v, want failing with timeout in tls since the 18th attempt", a)
	}
	if a.CertNotAfter.Year() != 2030 {
		t.Errorf("cert not after = %v", a.CertNotAfter)
	}
	if l := h.Latest("a"); l == nil || l.Total != 60*time.Millisecond || len(l.Phases) != 3 {
		t.Errorf("latest = %+v", l)
	}
	h.Retain([]string{"a", "c"})
	if s, ok := h.Series("a", time.Time{}, now.Add(time.Second)); !ok || len(s.Started) != 8 {
		t.Errorf("a after Retain with it: %v, want its 8 attempts kept", s)
	}
	if _, ok := h.Series("c", time.Time{}, now); !ok {
		t.Error("c, newly named, is not listed after Retain")
	}
	h.Retain([]string{"b"})
	if _, ok := h.Series("a", time.Time{}, now); ok {
		t.Error("a is still kept after Retain without it")
	}
}

func TestRetentionDropsOldAttempts(t *testing.T) {
	h := New(time.Minute, time.Second)
	now := time.Now()
	_ = h.Attempt(attempt("a", now.Add(-2*time.Minute), 1, ""))
	_ = h.Attempt(attempt("a", now.Add(-time.Second), 1, ""))
	s, _ := h.Series("a", time.Time{}, now)
	if len(s.Started) != 1 {
		t.Errorf("%d attempts within a minute's retention, want 1", len(s.Started))
	}
}

func TestAbsentPhase(t *testing.T) {
	h := New(time.Hour, time.Second)
	now := time.Now()
	a := attempt("a", now.Add(-time.Second), 5, "refused")
	a.Phases = a.Phases[:2]
	_ = h.Attempt(a)
	_ = h.Attempt(attempt("a", now.Add(-time.Millisecond), 5, ""))
	s, _ := h.Series("a", time.Time{}, now)
	if s.Durations[2][0] >= 0 || s.Durations[2][1] != 5*time.Millisecond {
		t.Errorf("tls durations = %v, want absent then 5ms", s.Durations[2])
	}
}

// BenchmarkBytesPerTarget reports the heap a History holds per target for
// 1,000 targets probed every 15s over the default 24h retention (the
// figure in docs/performance.md; make bench prints it as
// serve.history_bytes_per_target).
func BenchmarkBytesPerTarget(b *testing.B) {
	for range b.N {
		b.ReportMetric(BytesPerTarget(1000, 15*time.Second, DefaultRetain), "bytes/target")
	}
}

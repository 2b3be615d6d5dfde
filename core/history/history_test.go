package history

import (
	"math"
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

// TestBucketsKeepTheOlderAttempts feeds five minutes of attempts a second
// apart to a history keeping the last minute's one by one: the older ones
// come back as 4-second buckets (a 288th of 10 minutes is less than four
// attempts' worth), each with its count, its failures and most frequent
// class, and the quantiles of each column, ending where the attempts kept
// one by one begin.
func TestBucketsKeepTheOlderAttempts(t *testing.T) {
	h := NewWith(Options{Retain: 10 * time.Minute, Attempts: time.Minute, Every: time.Second})
	if h.width != 4000 || h.size != 62 || h.RetainAttempts() != time.Minute {
		t.Fatalf("width %d ms, size %d, attempts %v; want 4000, 62 and a minute", h.width, h.size, h.RetainAttempts())
	}
	now := time.Now()
	base := time.UnixMilli(now.UnixMilli() - now.UnixMilli()%4000).Add(-300 * time.Second)
	const n = 300
	for i := range n {
		var class sdk.Class
		switch {
		case i == 105:
			class = "refused"
		case i >= 100 && i < 108:
			class = "timeout"
		}
		if err := h.Attempt(attempt("a", base.Add(time.Duration(i)*time.Second), i, class)); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := h.Series("a", time.Time{}, now.Add(time.Second))
	if len(s.Started) != 62 {
		t.Fatalf("%d attempts one by one, want 62", len(s.Started))
	}
	b := s.Buckets
	if b == nil {
		t.Fatal("no buckets")
	}
	// The records hold attempts 238..299; the buckets the ones before,
	// whole buckets of four: 0..235, 59 of them.
	if len(b.Start) != 59 || b.Width != 4*time.Second {
		t.Fatalf("%d buckets of %v, want 59 of 4s", len(b.Start), b.Width)
	}
	if end := b.Start[len(b.Start)-1].Add(b.Width); end.After(s.Started[0]) {
		t.Errorf("the last bucket ends at %v, after the first attempt kept one by one, %v", end, s.Started[0])
	}
	for j, start := range b.Start {
		first := 4 * j
		if !start.Equal(base.Add(time.Duration(first) * time.Second)) {
			t.Fatalf("bucket %d starts at %v, want %v", j, start, base.Add(time.Duration(first)*time.Second))
		}
		if b.Attempts[j] != 4 {
			t.Errorf("bucket %d: %d attempts, want 4", j, b.Attempts[j])
		}
		// Attempt i's phases take i ms each, its total 3i: the quantiles
		// lie between the ranks, as the page's own bands do.
		ms := func(v float64) time.Duration { return time.Duration(math.Round(v*1000)) * time.Microsecond }
		// Kept to 0.05 %.
		near := func(got, want time.Duration) bool {
			return math.Abs(float64(got-want)) <= float64(want)*0.0005+float64(time.Microsecond)
		}
		for k, q := range Quantiles {
			if want := ms(float64(first) + 3*q); !near(b.Durations[0][j][k], want) {
				t.Errorf("bucket %d: resolve's %v quantile %v, want %v", j, q, b.Durations[0][j][k], want)
			}
			if want := ms(3 * (float64(first) + 3*q)); !near(b.Total[j][k], want) {
				t.Errorf("bucket %d: total's %v quantile %v, want %v", j, q, b.Total[j][k], want)
			}
		}
	}
	// Attempts 100..107 failed, 105 as refused, the others timeout.
	for j := range b.Start {
		want, class := 0, ""
		if j == 25 || j == 26 {
			want, class = 4, "timeout"
		}
		if b.Failures[j] != want || b.Class[j] != class {
			t.Errorf("bucket %d: %d failures, mostly %q; want %d, %q", j, b.Failures[j], b.Class[j], want, class)
		}
	}
	// A range selects buckets by their start.
	s, _ = h.Series("a", base.Add(100*time.Second), base.Add(120*time.Second))
	if s.Buckets == nil || len(s.Buckets.Start) != 5 || len(s.Started) != 0 {
		t.Errorf("100 to 120 s in: %v buckets, %d attempts; want 5 buckets", s.Buckets, len(s.Started))
	}
	// A retention of an hour at most keeps every attempt, as before.
	if h := New(time.Hour, time.Second); h.width != 0 || h.size != 3602 {
		t.Errorf("an hour's retention: width %d, size %d; want every attempt kept, 3602", h.width, h.size)
	}
}

// TestBucketsOfAShortAttempts checks that a bucket longer than the
// attempts kept one by one still counts all of its attempts: the ring
// holds two buckets' worth.
func TestBucketsOfAShortAttempts(t *testing.T) {
	h := NewWith(Options{Retain: 24 * time.Hour, Attempts: time.Second, Every: time.Second})
	if h.width != 300_000 || h.size != 602 {
		t.Fatalf("width %d ms, size %d; want 300,000 and two buckets of attempts, 602", h.width, h.size)
	}
	now := time.Now()
	base := time.UnixMilli(now.UnixMilli() - now.UnixMilli()%300_000).Add(-time.Hour)
	for i := range 3600 {
		_ = h.Attempt(attempt("a", base.Add(time.Duration(i)*time.Second), 1, ""))
	}
	s, _ := h.Series("a", time.Time{}, now.Add(time.Second))
	if s.Buckets == nil || len(s.Buckets.Start) < 9 {
		t.Fatalf("buckets %+v, want 9 or more", s.Buckets)
	}
	for j, n := range s.Buckets.Attempts {
		if n != 300 {
			t.Errorf("bucket %d: %d attempts, want the 300 of its 5 minutes", j, n)
		}
	}
	// Every millisecond over a day: a bucket is at most half the ring.
	if h := NewWith(Options{Retain: 24 * time.Hour, Attempts: time.Second, Every: time.Millisecond}); h.width != MaxPoints/2 || h.size != MaxPoints {
		t.Errorf("every 1ms: width %d ms, size %d; want %d and %d", h.width, h.size, MaxPoints/2, MaxPoints)
	}
}

// TestPack checks the packing of a bucket's quantiles: exact below 2,048
// µs, within 0.05 % above, in order, and absent kept.
func TestPack(t *testing.T) {
	prev := uint32(0)
	for w := uint64(0); w < absent-1; w += 1 + w/997 {
		v := uint32(w)
		got := unpack(pack(v))
		if v < 2048 && got != v || math.Abs(float64(got)-float64(v)) > float64(v)*0.0005 {
			t.Fatalf("%d µs packs to %d µs", v, got)
		}
		if got < prev {
			t.Fatalf("%d µs packs to %d µs, below %d µs of a shorter one", v, got, prev)
		}
		prev = got
	}
	if got := unpack(pack(absent - 1)); got != absent-1 {
		t.Errorf("the longest duration packs to %d µs, want %d", got, absent-1)
	}
	if pack(absent) != absent16 {
		t.Errorf("absent packs to %d", pack(absent))
	}
}

// TestBucketsRing checks that the buckets are a ring: past the retention's
// worth, the oldest go.
func TestBucketsRing(t *testing.T) {
	h := NewWith(Options{Retain: time.Minute, Attempts: 10 * time.Second, Every: time.Second})
	// A 288th of a minute is less than four attempts: 4-second buckets,
	// 15 of them and 2 more.
	if h.width != 4000 || h.buckets != 17 {
		t.Fatalf("width %d, buckets %d; want 4000 and 17", h.width, h.buckets)
	}
	now := time.Now()
	base := time.UnixMilli(now.UnixMilli() - now.UnixMilli()%4000).Add(-200 * time.Second)
	for i := range 200 {
		_ = h.Attempt(attempt("a", base.Add(time.Duration(i)*time.Second), 1, ""))
	}
	r := h.targets["a"]
	if len(r.older.start) != 17 {
		t.Fatalf("%d buckets kept, want 17", len(r.older.start))
	}
	s, _ := h.Series("a", time.Time{}, now.Add(time.Second))
	if s.Buckets == nil {
		t.Fatal("no buckets")
	}
	// Within the minute's retention and before the 12 records: 12 s kept
	// one by one, so the buckets of 140..184 s.
	for j, start := range s.Buckets.Start {
		if start.Before(now.Add(-time.Minute)) {
			t.Errorf("bucket %d starts at %v, before the retention", j, start)
		}
	}
	if got := len(s.Buckets.Start); got < 10 || got > 13 {
		t.Errorf("%d buckets within the minute, want 10-13", got)
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

package report

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/probe-dev/probe/core/engine"
)

// durations returns n durations in seconds spread log-uniformly from 1 µs
// to 10 s, with the edge cases of the bucketing among them: zero, powers of
// two and the classic bounds.
func durations(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := []float64{0, 0.5, 1, 2, 0.25, math.Exp2(-10), math.Exp2(1.0 / 8)}
	v = append(v, Buckets...)
	for range n {
		v = append(v, math.Pow(10, -6+7*r.Float64()))
	}
	return v
}

// TestHistogramAsClientGolang checks that a histogram reads as
// client_golang's own histogram of the same options does, after the same
// observations: the same buckets, schema (halved past NativeMaxBuckets),
// zero bucket, count and sum.
func TestHistogramAsClientGolang(t *testing.T) {
	for _, layout := range []Layout{Native, Classic} {
		for _, n := range []int{1, 5, 30, 2000} {
			t.Run(string(layout)+"/"+strconv.Itoa(n), func(t *testing.T) {
				opts := prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: Buckets}
				if layout == Native {
					opts = prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: []float64{},
						NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: NativeMaxBuckets}
				}
				want := prometheus.NewHistogram(opts)
				got := newHistogram()
				for _, v := range durations(n, uint64(n)) {
					want.Observe(v)
					got.observe(v, layout)
				}
				var w, g dto.Metric
				if err := want.Write(&w); err != nil {
					t.Fatal(err)
				}
				g.Histogram = got.write(&arena{}, layout, nil).Histogram
				ignore := cmpopts.IgnoreUnexported(dto.Histogram{}, dto.BucketSpan{}, dto.Bucket{})
				created := cmpopts.IgnoreFields(dto.Histogram{}, "CreatedTimestamp", "Exemplars")
				if d := cmp.Diff(w.Histogram, g.Histogram, ignore, created, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("histogram differs from client_golang's (-want +got):\n%s", d)
				}
				if layout == Native && n == 2000 && g.Histogram.GetSchema() >= nativeSchema {
					t.Errorf("schema %d: the test does not reach the halving", g.Histogram.GetSchema())
				}
			})
		}
	}
}

// TestMetricsMemoryBounded feeds Metrics rounds of attempts of many targets,
// their durations spread over six decades so that new buckets keep opening
// until the histograms halve their resolution, each attempt with large
// attributes, and checks that what it holds stays within a bound per target
// and stops growing once the histograms are full: the attributes are not
// kept, a histogram holds at most NativeMaxBuckets buckets, and a gather
// keeps only the labels of each target and phase.
func TestMetricsMemoryBounded(t *testing.T) {
	const targets, rounds = 1000, 240
	names := make([]string, targets)
	for i := range names {
		names[i] = "target-" + strconv.Itoa(i)
	}
	m := NewMetrics(Native, "")
	r := rand.New(rand.NewPCG(1, 2))
	round := func() {
		for _, name := range names {
			d := func() time.Duration { return time.Duration(math.Pow(10, 3+6*r.Float64())) }
			a := &engine.Attempt{Target: name, Started: time.Now(), OK: true, Total: d(), Phases: []engine.Phase{
				{Name: "resolve", OK: true, Duration: d(), Attrs: map[string]any{"answer": strings.Repeat("x", 1000)}},
				{Name: "connect", OK: true, Duration: d(), Attrs: map[string]any{}},
				{Name: "tls", OK: true, Duration: d(), Attrs: map[string]any{
					"cert_not_after": "2027-01-01T00:00:00Z", "chain": strings.Repeat("y", 3000)}},
			}}
			m.Add(a)
		}
		if _, err := m.Gather(); err != nil { // as a scrape would: the labels it keeps count
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return s.HeapAlloc
	}
	base := heap()
	for range rounds / 2 {
		round()
	}
	half := heap()
	for range rounds / 2 {
		round()
	}
	end := heap()
	runtime.KeepAlive(m)
	perTarget := float64(end-base) / targets
	growth := (float64(end) - float64(half)) / targets
	t.Logf("%.0f bytes a target after %d rounds; %.0f more in the last %d", perTarget, rounds, growth, rounds/2)
	// Four histograms of at most 40 buckets (16 bytes) each, in slices of
	// up to 44, the series, its labels and the gist: at most 4 KB. (client_golang's
	// histograms held 5 KB each at 10,000 targets of `probe serve`.)
	if perTarget > 4096 {
		t.Errorf("Metrics holds %.0f bytes a target, want at most 4096", perTarget)
	}
	if growth > 256 {
		t.Errorf("Metrics grew by %.0f bytes a target in rounds %d to %d, want at most 256", growth, rounds/2, rounds)
	}
}

package exporter

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/report"
)

// BenchmarkScrapeCompression answers a scrape of `/metrics` as Prometheus
// asks it (OpenMetrics, gzip) for 10,000 TLS targets of 18 attempts each,
// their durations scattered as a lab's are: with promhttp's own gzip, and
// through gzhttp, as Handler answers it. It reports the answer's size.
func BenchmarkScrapeCompression(b *testing.B) {
	m := report.NewMetrics(report.Native, "")
	rnd := rand.New(rand.NewPCG(1, 2))
	ms := func(mean float64) time.Duration {
		return time.Duration(rnd.ExpFloat64() * mean * float64(time.Millisecond))
	}
	for p := range 10000 {
		for i := range 18 {
			a := engine.Attempt{Target: fmt.Sprintf("t%05d", p), Place: p, Seq: i + 1, OK: true,
				Started: time.Unix(1_800_000_000, 0).Add(time.Duration(i) * 10 * time.Second),
				Address: netip.MustParseAddrPort("127.0.0.1:443"),
				Phases: []engine.Phase{
					{Name: "resolve", Plugin: "dns-miekg", Duration: ms(0.3), OK: true},
					{Name: "connect", Plugin: "dial-tcp", Duration: ms(0.2), OK: true},
					{Name: "tls", Plugin: "tls", Duration: ms(1.5), OK: true},
				}}
			for _, ph := range a.Phases {
				a.Total += ph.Duration
			}
			m.Add(&a)
		}
	}
	scrape := promhttp.HandlerFor(report.Merge(prometheus.NewRegistry(), m), promhttp.HandlerOpts{DisableCompression: true})
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{
		{"promhttp", promhttp.HandlerFor(report.Merge(prometheus.NewRegistry(), m), promhttp.HandlerOpts{})},
		{"gzhttp", gzhttp.GzipHandler(scrape)},
	} {
		b.Run(h.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				r.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
				r.Header.Set("Accept-Encoding", "gzip")
				w := httptest.NewRecorder()
				h.handler.ServeHTTP(w, r)
				if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
					b.Fatalf("status %d, encoding %q", w.Code, w.Header().Get("Content-Encoding"))
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

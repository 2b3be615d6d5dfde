package report

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/stats"
)

// tlsAttempt is the i-th attempt of a TLS target as the process stage of
// bin/bench makes them: resolve of an IP literal, connect and tls, the
// attributes the real plugins give.
func tlsAttempt(place, i int) engine.Attempt {
	return engine.Attempt{Target: fmt.Sprint(place), Place: place, Seq: i + 1, OK: true,
		Started: time.Date(2026, 11, 22, 10, 0, 0, i*1000, time.UTC), Address: netip.MustParseAddrPort("127.0.0.1:38519"),
		Total: us(1900 + i), Overhead: us(100),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Start: us(75), Duration: us(2), OK: true,
				Attrs: map[string]any{"addresses": []string{"127.0.0.1"}, "literal": true}},
			{Name: "connect", Plugin: "dial-tcp", Start: us(95), Duration: us(90 + i), OK: true,
				Attrs: map[string]any{"clock": "process", "kernel_rtt_ms": 0.016 + float64(i%7)/1000, "kernel_rttvar_ms": 0.008,
					"local": fmt.Sprintf("127.0.0.1:%d", 36000+i), "remote": "127.0.0.1:38519"}},
			{Name: "tls", Plugin: "tls", Start: us(190 + i), Duration: us(1500 + i), OK: true,
				Attrs: map[string]any{"alpn": "", "cert_days_left": 0,
					"cert_fingerprint_sha256": "7190e96e800d28825d5b7019a9d519305565a6ecc766b52210364e2e48bd5556",
					"cert_issuer":             "CN=probe lab CA,O=probe lab", "cert_not_after": "2026-12-08T01:11:37Z",
					"cert_not_before": "2026-12-07T00:11:37Z", "cert_sans": []string{"api.probe.test", "*.probe.test", "127.0.0.1"},
					"cert_serial": "595418f4826fa80f384212f57b4ea038", "cert_subject": "CN=api.probe.test",
					"certs_earliest_not_after": "2026-12-08T01:11:37Z", "chain_not_after": "2026-12-08T01:11:37Z",
					"cipher": "TLS_AES_128_GCM_SHA256", "resumed": false, "server_name": "api.probe.test", "verified": true,
					"version": "TLS 1.3"}},
		}}
}

// BenchmarkJSONDocument streams the document of 32 TLS targets of 60
// attempts each, as `probe run -o json` of the process stage writes it:
// each attempt given as it finishes, each target as it is done.
func BenchmarkJSONDocument(b *testing.B) {
	const targets, attempts = 32, 60
	var all [targets][attempts]engine.Attempt
	for p := range targets {
		for i := range attempts {
			all[p][i] = tlsAttempt(p, i)
		}
	}
	res := &engine.Result{Started: time.Now(), Stats: map[string]stats.Summary{}}
	var size countWriter
	for b.Loop() {
		size = 0
		d := NewJSONDocument(&size, "process.hcl", "")
		for p := range targets {
			for i := range attempts {
				if err := d.Attempt(&all[p][i]); err != nil {
					b.Fatal(err)
				}
			}
			tr := &engine.TargetResult{Target: &engine.Target{Name: fmt.Sprint(p), Host: "127.0.0.1", Port: 38519,
				Pipeline: &engine.Pipeline{Name: "tls"}}, OK: true, Stats: map[string]stats.Summary{}}
			if err := d.Target(p, tr); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Close(res); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(targets*attempts), "bytes/attempt")
}

// countWriter counts the bytes written to it.
type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// BenchmarkMetricsGather gathers the families of 10,000 TLS targets of 18
// attempts each, as `probe serve` has them after three minutes every 10 s,
// and encodes them in each format Prometheus scrapes.
func BenchmarkMetricsGather(b *testing.B) {
	m := NewMetrics(Native, "")
	for p := range 10000 {
		for i := range 18 {
			a := tlsAttempt(p, i*37)
			m.Add(&a)
		}
	}
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, f := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeOpenMetrics)} {
		b.Run(string(f), func(b *testing.B) {
			for b.Loop() {
				mfs, err := m.Gather()
				if err != nil {
					b.Fatal(err)
				}
				enc := expfmt.NewEncoder(io.Discard, f)
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

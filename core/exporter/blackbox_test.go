package exporter

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// series returns BlackboxMetrics as "name{labels} value" lines, sorted.
func series(t *testing.T, a *engine.Attempt, tg *engine.Target) []string {
	t.Helper()
	var out []string
	for _, m := range BlackboxMetrics(a, tg) {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := ""
		for _, l := range pb.Label {
			labels += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
		}
		out = append(out, fmt.Sprintf("%s{%s} %v", name(m.Desc().String()), labels, pb.GetGauge().GetValue()))
	}
	sort.Strings(out)
	return out
}

// name reads the fqName of a Desc's String: Desc{fqName: "NAME", ...}.
func name(desc string) string {
	_, rest, _ := strings.Cut(desc, `fqName: "`)
	n, _, _ := strings.Cut(rest, `"`)
	return n
}

func TestBlackboxMetrics(t *testing.T) {
	ms := time.Millisecond
	httpTarget := &engine.Target{Pipeline: &engine.Pipeline{Handshakes: []engine.Stage[sdk.Handshaker]{{Plugin: "tls"}, {Plugin: "http"}}}}
	ok := &engine.Attempt{
		Address: netip.MustParseAddrPort("[2001:db8::1]:443"), OK: true,
		Phases: []engine.Phase{
			{Name: "resolve", Duration: 2 * ms, OK: true},
			{Name: "connect", Duration: 3 * ms, OK: true},
			{Name: "tls", Duration: 5 * ms, OK: true, Attrs: map[string]any{"version": "TLS 1.3", "cipher": "TLS_AES_128_GCM_SHA256",
				"cert_not_after": "2027-01-02T03:04:05Z"}},
			{Name: "http", Duration: 7 * ms, OK: true, Attrs: map[string]any{"status": 200, "version": "HTTP/2.0",
				"ttfb_ms": 4.0, "transfer_ms": 1.0, "redirects": 1, "content_length": 3, "body_bytes": 3}},
		},
	}
	want := []string{
		`probe_dns_lookup_time_seconds{} 0.002`,
		`probe_failed_due_to_regex{} 0`,
		`probe_http_content_length{} 3`,
		`probe_http_duration_seconds{phase="connect"} 0.003`,
		`probe_http_duration_seconds{phase="processing"} 0.004`,
		`probe_http_duration_seconds{phase="resolve"} 0.002`,
		`probe_http_duration_seconds{phase="tls"} 0.005`,
		`probe_http_duration_seconds{phase="transfer"} 0.001`,
		`probe_http_redirects{} 1`,
		`probe_http_ssl{} 1`,
		`probe_http_uncompressed_body_length{} 3`,
		`probe_http_version{} 2`,
		`probe_ip_addr_hash{} 1.851458804e+09`, // FNV-32a of the 16 bytes, as blackbox's ipHash
		`probe_ip_protocol{} 6`,
		`probe_ssl_earliest_cert_expiry{} 1.798859045e+09`,
		`probe_tls_cipher_info{cipher="TLS_AES_128_GCM_SHA256"} 1`,
		`probe_tls_version_info{version="TLS 1.3"} 1`,
	}
	if diff := cmp.Diff(want, series(t, ok, httpTarget)); diff != "" {
		t.Errorf("a successful HTTPS attempt (-want +got):\n%s", diff)
	}

	// Refused before any response: the http families are 0, as blackbox
	// has them, and probe_http_status_code 0 too.
	refused := &engine.Attempt{
		Address: netip.MustParseAddrPort("127.0.0.1:443"),
		Phases:  []engine.Phase{{Name: "resolve", Duration: ms, OK: true}, {Name: "connect", Duration: ms}},
		Failure: &sdk.Failure{Phase: "connect", Class: "tcp.refused"},
	}
	want = []string{
		`probe_dns_lookup_time_seconds{} 0.001`,
		`probe_failed_due_to_regex{} 0`,
		`probe_http_content_length{} 0`,
		`probe_http_duration_seconds{phase="connect"} 0.001`,
		`probe_http_duration_seconds{phase="processing"} 0`,
		`probe_http_duration_seconds{phase="resolve"} 0.001`,
		`probe_http_duration_seconds{phase="tls"} 0`,
		`probe_http_duration_seconds{phase="transfer"} 0`,
		`probe_http_redirects{} 0`,
		`probe_http_ssl{} 0`,
		`probe_http_status_code{} 0`,
		`probe_http_uncompressed_body_length{} 0`,
		`probe_http_version{} 0`,
		`probe_ip_addr_hash{} 3.668918509e+09`, // what blackbox_exporter answers for 127.0.0.1
		`probe_ip_protocol{} 4`,
	}
	if diff := cmp.Diff(want, series(t, refused, httpTarget)); diff != "" {
		t.Errorf("a refused HTTPS attempt (-want +got):\n%s", diff)
	}
}

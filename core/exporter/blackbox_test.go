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
				"cert_not_after": "2027-01-02T03:04:05Z", "certs_earliest_not_after": "2026-12-01T00:00:00Z",
				"chain_not_after": "2026-12-01T00:00:00Z", "cert_fingerprint_sha256": "ab01", "cert_serial": "0bff",
				"cert_subject": "CN=api.example.com", "cert_issuer": "CN=CA", "cert_sans": []string{"api.example.com", "www.example.com", "192.0.2.1"}}},
			{Name: "http", Duration: 7 * ms, OK: true, Attrs: map[string]any{"status": 200, "version": "HTTP/2.0",
				"ttfb_ms": 4.0, "transfer_ms": 1.0, "redirects": 1, "content_length": 3, "body_bytes": 3,
				"last_modified": "2024-01-02T03:04:05Z"}},
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
		`probe_http_last_modified_timestamp_seconds{} 1.704164645e+09`,
		`probe_http_redirects{} 1`,
		`probe_http_ssl{} 1`,
		`probe_http_uncompressed_body_length{} 3`,
		`probe_http_version{} 2`,
		`probe_ip_addr_hash{} 1.851458804e+09`, // FNV-32a of the 16 bytes, as blackbox's ipHash
		`probe_ip_protocol{} 6`,
		`probe_ssl_earliest_cert_expiry{} 1.7960832e+09`, // the earliest of the certificates sent, not the leaf's
		`probe_ssl_last_chain_expiry_timestamp_seconds{} 1.7960832e+09`,
		// The leaf's DNS names, without its IP address, as blackbox has them.
		`probe_ssl_last_chain_info{fingerprint_sha256="ab01"issuer="CN=CA"serialnumber="0bff"subject="CN=api.example.com"subjectalternative="api.example.com,www.example.com"} 1`,
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

	// A handshake that completed without a verified chain
	// (insecure_skip_verify): the last chain's expiry is Go's zero time, as
	// blackbox reports it; a failed handshake has no chain families.
	tcpTarget := &engine.Target{Pipeline: &engine.Pipeline{Handshakes: []engine.Stage[sdk.Handshaker]{{Plugin: "tls"}}}}
	for _, ok := range []bool{true, false} {
		insecure := &engine.Attempt{
			Address: netip.MustParseAddrPort("127.0.0.1:443"), OK: ok,
			Phases: []engine.Phase{{Name: "resolve", Duration: ms, OK: true}, {Name: "connect", Duration: ms, OK: true},
				{Name: "tls", Duration: ms, OK: ok, Attrs: map[string]any{"version": "TLS 1.2", "cert_not_after": "2026-12-01T00:00:00Z",
					"cert_fingerprint_sha256": "ab01", "cert_serial": "01", "cert_subject": "CN=a", "cert_issuer": "CN=a"}}},
		}
		want = []string{
			`probe_dns_lookup_time_seconds{} 0.001`,
			`probe_failed_due_to_regex{} 0`,
			`probe_ip_addr_hash{} 3.668918509e+09`,
			`probe_ip_protocol{} 4`,
			`probe_ssl_earliest_cert_expiry{} 1.7960832e+09`,
			`probe_tls_version_info{version="TLS 1.2"} 1`,
		}
		if ok {
			want = append(want[:5], `probe_ssl_last_chain_expiry_timestamp_seconds{} -6.21355968e+10`,
				`probe_ssl_last_chain_info{fingerprint_sha256="ab01"issuer="CN=a"serialnumber="01"subject="CN=a"subjectalternative=""} 1`, want[5])
		}
		if diff := cmp.Diff(want, series(t, insecure, tcpTarget)); diff != "" {
			t.Errorf("a TLS attempt, ok %v, without a verified chain (-want +got):\n%s", ok, diff)
		}
	}
}

func TestBlackboxDNS(t *testing.T) {
	ms := time.Millisecond
	dnsTarget := &engine.Target{Pipeline: &engine.Pipeline{Dialer: engine.Stage[sdk.Dialer]{Name: "soa", Plugin: "dns-miekg"}}}
	// A SOA query over TCP: connect is the exchange's connection, request
	// its round trip, resolve the lookup of the server's name; the address
	// family and hash are the server's; the serial is the SOA's.
	answered := &engine.Attempt{
		Address: netip.MustParseAddrPort("127.0.0.1:53"), OK: true,
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Duration: 2 * ms, OK: true},
			{Name: "dns", Plugin: "dns-miekg", Duration: 3 * ms, OK: true, Attrs: map[string]any{
				"server": "127.0.0.1:53", "query_type": "SOA", "rcode": "NOERROR", "connect_ms": 0.5, "rtt_ms": 1.5,
				"answer_rrs": 1, "authority_rrs": 2, "additional_rrs": 3, "serial": int64(2026120601)}},
		},
	}
	want := []string{
		`probe_dns_additional_rrs{} 3`,
		`probe_dns_answer_rrs{} 1`,
		`probe_dns_authority_rrs{} 2`,
		`probe_dns_duration_seconds{phase="connect"} 0.0005`,
		`probe_dns_duration_seconds{phase="request"} 0.0015`,
		`probe_dns_duration_seconds{phase="resolve"} 0.002`,
		`probe_dns_lookup_time_seconds{} 0.002`,
		`probe_dns_query_succeeded{} 1`,
		`probe_dns_serial{} 2.026120601e+09`,
		`probe_ip_addr_hash{} 3.668918509e+09`, // 127.0.0.1, the server
		`probe_ip_protocol{} 4`,
	}
	if diff := cmp.Diff(want, series(t, answered, dnsTarget)); diff != "" {
		t.Errorf("an answered SOA query (-want +got):\n%s", diff)
	}

	// An MX query that failed its checks: a reply came, so the counts
	// and probe_dns_query_succeeded are there; no serial but for SOA.
	mx := &engine.Attempt{
		Address: netip.MustParseAddrPort("127.0.0.1:53"),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", Duration: ms, OK: true},
			{Name: "dns", Plugin: "dns-miekg", Duration: 2 * ms, Attrs: map[string]any{
				"query_type": "MX", "rcode": "NOERROR", "rtt_ms": 1.0, "answer_rrs": 1, "authority_rrs": 0, "additional_rrs": 0}},
		},
		Failure: &sdk.Failure{Phase: "dns", Class: "dns.record_mismatch"},
	}
	want = []string{
		`probe_dns_additional_rrs{} 0`,
		`probe_dns_answer_rrs{} 1`,
		`probe_dns_authority_rrs{} 0`,
		`probe_dns_duration_seconds{phase="connect"} 0`,
		`probe_dns_duration_seconds{phase="request"} 0.001`,
		`probe_dns_duration_seconds{phase="resolve"} 0.001`,
		`probe_dns_lookup_time_seconds{} 0.001`,
		`probe_dns_query_succeeded{} 1`,
		`probe_ip_addr_hash{} 3.668918509e+09`,
		`probe_ip_protocol{} 4`,
	}
	if diff := cmp.Diff(want, series(t, mx, dnsTarget)); diff != "" {
		t.Errorf("an MX query failing its checks (-want +got):\n%s", diff)
	}

	// No reply: the query did not succeed, the counts are 0, and the wait
	// is connect's, as blackbox counts a failed exchange.
	silent := &engine.Attempt{
		Address: netip.MustParseAddrPort("127.0.0.1:53"),
		Phases: []engine.Phase{
			{Name: "resolve", Plugin: "dns-system", OK: true},
			{Name: "dns", Plugin: "dns-miekg", Duration: 2 * time.Second, Attrs: map[string]any{"query_type": "SOA", "server": "127.0.0.1:53"}},
		},
		Failure: &sdk.Failure{Phase: "dns", Class: "dns.timeout"},
	}
	want = []string{
		`probe_dns_additional_rrs{} 0`,
		`probe_dns_answer_rrs{} 0`,
		`probe_dns_authority_rrs{} 0`,
		`probe_dns_duration_seconds{phase="connect"} 2`,
		`probe_dns_duration_seconds{phase="request"} 0`,
		`probe_dns_duration_seconds{phase="resolve"} 0`,
		`probe_dns_lookup_time_seconds{} 0`,
		`probe_dns_query_succeeded{} 0`,
		`probe_ip_addr_hash{} 3.668918509e+09`,
		`probe_ip_protocol{} 4`,
	}
	if diff := cmp.Diff(want, series(t, silent, dnsTarget)); diff != "" {
		t.Errorf("an unanswered query (-want +got):\n%s", diff)
	}

	// The server's name did not resolve: no exchange, every DNS family 0.
	unresolved := &engine.Attempt{
		Phases:  []engine.Phase{{Name: "resolve", Plugin: "dns-system", Duration: 4 * ms}},
		Failure: &sdk.Failure{Phase: "resolve", Class: "dns.nxdomain"},
	}
	want = []string{
		`probe_dns_additional_rrs{} 0`,
		`probe_dns_answer_rrs{} 0`,
		`probe_dns_authority_rrs{} 0`,
		`probe_dns_duration_seconds{phase="connect"} 0`,
		`probe_dns_duration_seconds{phase="request"} 0`,
		`probe_dns_duration_seconds{phase="resolve"} 0`,
		`probe_dns_lookup_time_seconds{} 0.004`,
		`probe_dns_query_succeeded{} 0`,
	}
	if diff := cmp.Diff(want, series(t, unresolved, dnsTarget)); diff != "" {
		t.Errorf("a server name that did not resolve (-want +got):\n%s", diff)
	}
}

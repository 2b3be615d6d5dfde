package exporter

import (
	"hash/fnv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probe-dev/probe/core/engine"
)

// blackbox describes the metric families of blackbox_exporter that one
// attempt maps to, with blackbox's names, labels and meanings. Those
// probe's own /probe families already have under the same name
// (probe_success, probe_duration_seconds, probe_http_status_code) are not
// repeated.
var blackbox = struct {
	dnsLookup, ipProtocol, ipHash, httpDuration, httpVersion, httpSSL, httpRedirects,
	httpContentLength, httpBodyLength, sslExpiry, tlsVersion, tlsCipher, regex, httpStatus *prometheus.Desc
}{
	httpStatus:        prometheus.NewDesc("probe_http_status_code", "Response HTTP status code", nil, nil),
	dnsLookup:         prometheus.NewDesc("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", nil, nil),
	ipProtocol:        prometheus.NewDesc("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", nil, nil),
	ipHash:            prometheus.NewDesc("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.", nil, nil),
	httpDuration:      prometheus.NewDesc("probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects", []string{"phase"}, nil),
	httpVersion:       prometheus.NewDesc("probe_http_version", "Returns the version of HTTP of the probe response", nil, nil),
	httpSSL:           prometheus.NewDesc("probe_http_ssl", "Indicates if SSL was used for the final redirect", nil, nil),
	httpRedirects:     prometheus.NewDesc("probe_http_redirects", "The number of redirects", nil, nil),
	httpContentLength: prometheus.NewDesc("probe_http_content_length", "Length of http content response", nil, nil),
	httpBodyLength:    prometheus.NewDesc("probe_http_uncompressed_body_length", "Length of uncompressed response body", nil, nil),
	sslExpiry:         prometheus.NewDesc("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", nil, nil),
	tlsVersion:        prometheus.NewDesc("probe_tls_version_info", "Returns the TLS version used or NaN when unknown", []string{"version"}, nil),
	tlsCipher:         prometheus.NewDesc("probe_tls_cipher_info", "Returns the TLS cipher negotiated during handshake", []string{"cipher"}, nil),
	regex:             prometheus.NewDesc("probe_failed_due_to_regex", "Indicates if probe failed due to regex", nil, nil),
}

// BlackboxMetrics returns the blackbox_exporter metric families of
// attempt a of target t, as blackbox's http and tcp probers name them for
// the same probe: the address family and hash of the address dialed, the
// resolve time, and for a pipeline with an http handshake
// probe_http_duration_seconds{phase=resolve|connect|tls|processing|transfer}
// (processing is the time to the response's first byte, transfer the
// body's), the HTTP version, TLS, redirects, lengths and whether a regexp
// failed it; for one with tls, the leaf certificate's expiry and the
// version and cipher negotiated. Families whose facts the attempt lacks
// (a phase that never ran) are absent, as blackbox leaves them out of a
// probe that failed before them.
func BlackboxMetrics(a *engine.Attempt, t *engine.Target) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	phases := map[string]*engine.Phase{}
	for i := range a.Phases {
		if _, dup := phases[a.Phases[i].Name]; !dup {
			phases[a.Phases[i].Name] = &a.Phases[i]
		}
	}
	if p := phases["resolve"]; p != nil {
		gauge(blackbox.dnsLookup, p.Duration.Seconds())
	}
	if a.Address.IsValid() {
		ip := a.Address.Addr().Unmap()
		family := 6.0
		if ip.Is4() {
			family = 4
		}
		gauge(blackbox.ipProtocol, family)
		h := fnv.New32a()
		b := ip.AsSlice() // 4 bytes for IPv4, 16 for IPv6, as blackbox hashes them
		h.Write(b)
		gauge(blackbox.ipHash, float64(h.Sum32()))
	}
	regex := 0.0 // the http and tcp probers' regexps: expect_body's here
	if f := a.Failure; f != nil && f.Class == "http.body_mismatch" {
		regex = 1
	}
	gauge(blackbox.regex, regex)
	tls := phases["tls"]
	if tls != nil {
		if s, ok := tls.Attrs["cert_not_after"].(string); ok {
			if at, err := time.Parse(time.RFC3339, s); err == nil {
				gauge(blackbox.sslExpiry, float64(at.Unix()))
			}
		}
		if v, ok := tls.Attrs["version"].(string); ok {
			gauge(blackbox.tlsVersion, 1, v)
		}
		if c, ok := tls.Attrs["cipher"].(string); ok {
			gauge(blackbox.tlsCipher, 1, c)
		}
	}
	if http := phases["http"]; http != nil || hasHTTP(t) {
		seconds := func(name string) float64 {
			if p := phases[name]; p != nil {
				return p.Duration.Seconds()
			}
			return 0
		}
		var processing, transfer float64
		if http != nil {
			if ms, ok := http.Attrs["ttfb_ms"].(float64); ok {
				processing = ms / 1000
			}
			if ms, ok := http.Attrs["transfer_ms"].(float64); ok {
				transfer = ms / 1000
			}
		}
		for _, ph := range []struct {
			name string
			v    float64
		}{{"resolve", seconds("resolve")}, {"connect", seconds("connect")}, {"tls", seconds("tls")},
			{"processing", processing}, {"transfer", transfer}} {
			gauge(blackbox.httpDuration, ph.v, ph.name)
		}
		ssl := 0.0
		if tls != nil && tls.OK {
			ssl = 1
		}
		if http != nil && http.Attrs["status"] != nil {
			gauge(blackbox.httpSSL, ssl)
			gauge(blackbox.httpVersion, map[string]float64{"HTTP/1.0": 1.0, "HTTP/1.1": 1.1, "HTTP/2.0": 2}[attrString(http, "version")])
			gauge(blackbox.httpRedirects, attrNumber(http, "redirects"))
			gauge(blackbox.httpContentLength, attrNumber(http, "content_length"))
			gauge(blackbox.httpBodyLength, attrNumber(http, "body_bytes"))
		} else {
			// No response: blackbox reports its http families as 0,
			// probe_http_status_code included, which probe's own families
			// leave out then.
			for _, d := range []*prometheus.Desc{blackbox.httpStatus, blackbox.httpSSL, blackbox.httpVersion,
				blackbox.httpRedirects, blackbox.httpContentLength, blackbox.httpBodyLength} {
				gauge(d, 0)
			}
		}
	}
	return out
}

// hasHTTP reports whether t's pipeline ends in an http handshake: a
// probe of it has blackbox's http families even when it failed early.
func hasHTTP(t *engine.Target) bool {
	if t == nil || t.Pipeline == nil {
		return false
	}
	for _, h := range t.Pipeline.Handshakes {
		if h.Plugin == "http" {
			return true
		}
	}
	return false
}

func attrString(p *engine.Phase, name string) string {
	s, _ := p.Attrs[name].(string)
	return s
}

// attrNumber returns a numeric attribute as a float64; 0 when absent.
func attrNumber(p *engine.Phase, name string) float64 {
	switch v := p.Attrs[name].(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// blackboxCollector collects BlackboxMetrics of one attempt.
type blackboxCollector struct {
	a *engine.Attempt
	t *engine.Target
}

// Describe sends nothing: the collector is unchecked, its families vary
// with the attempt.
func (blackboxCollector) Describe(chan<- *prometheus.Desc) {}

func (c blackboxCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range BlackboxMetrics(c.a, c.t) {
		ch <- m
	}
}

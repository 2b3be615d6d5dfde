package exporter

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/report"
)

// blackbox describes the metric families of blackbox_exporter that one
// attempt maps to, with blackbox's names, labels and meanings. Those
// probe's own /probe families already have under the same name
// (probe_success, probe_duration_seconds, probe_http_status_code) are not
// repeated.
var blackbox = struct {
	dnsLookup, ipProtocol, ipHash, httpDuration, httpVersion, httpSSL, httpRedirects,
	httpContentLength, httpBodyLength, httpLastModified, sslExpiry, sslChainExpiry, sslChainInfo, tlsVersion, tlsCipher,
	regex, httpStatus, dnsDuration, dnsAnswer, dnsAuthority, dnsAdditional, dnsSucceeded, dnsSerial,
	icmpDuration, icmpHopLimit, grpcDuration, grpcSSL, grpcStatus, grpcHealth *prometheus.Desc
}{
	// The help of probe's own probe_http_status_code, which it stands for
	// when no response came: one family has one help.
	httpStatus:        prometheus.NewDesc("probe_http_status_code", "The status code of the last HTTP response of the attempt.", nil, nil),
	dnsLookup:         prometheus.NewDesc("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", nil, nil),
	ipProtocol:        prometheus.NewDesc("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", nil, nil),
	ipHash:            prometheus.NewDesc("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.", nil, nil),
	httpDuration:      prometheus.NewDesc("probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects", []string{"phase"}, nil),
	httpVersion:       prometheus.NewDesc("probe_http_version", "Returns the version of HTTP of the probe response", nil, nil),
	httpSSL:           prometheus.NewDesc("probe_http_ssl", "Indicates if SSL was used for the final redirect", nil, nil),
	httpRedirects:     prometheus.NewDesc("probe_http_redirects", "The number of redirects", nil, nil),
	httpContentLength: prometheus.NewDesc("probe_http_content_length", "Length of http content response", nil, nil),
	httpBodyLength:    prometheus.NewDesc("probe_http_uncompressed_body_length", "Length of uncompressed response body", nil, nil),
	httpLastModified:  prometheus.NewDesc("probe_http_last_modified_timestamp_seconds", "Returns the Last-Modified HTTP response header in unixtime", nil, nil),
	sslExpiry:         prometheus.NewDesc("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", nil, nil),
	sslChainExpiry:    prometheus.NewDesc("probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp", nil, nil),
	sslChainInfo: prometheus.NewDesc("probe_ssl_last_chain_info", "Contains SSL leaf certificate information",
		[]string{"fingerprint_sha256", "subject", "issuer", "subjectalternative", "serialnumber"}, nil),
	tlsVersion:    prometheus.NewDesc("probe_tls_version_info", "Returns the TLS version used or NaN when unknown", []string{"version"}, nil),
	tlsCipher:     prometheus.NewDesc("probe_tls_cipher_info", "Returns the TLS cipher negotiated during handshake", []string{"cipher"}, nil),
	regex:         prometheus.NewDesc("probe_failed_due_to_regex", "Indicates if probe failed due to regex", nil, nil),
	dnsDuration:   prometheus.NewDesc("probe_dns_duration_seconds", "Duration of DNS request by phase", []string{"phase"}, nil),
	dnsAnswer:     prometheus.NewDesc("probe_dns_answer_rrs", "Returns number of entries in the answer resource record list", nil, nil),
	dnsAuthority:  prometheus.NewDesc("probe_dns_authority_rrs", "Returns number of entries in the authority resource record list", nil, nil),
	dnsAdditional: prometheus.NewDesc("probe_dns_additional_rrs", "Returns number of entries in the additional resource record list", nil, nil),
	dnsSucceeded:  prometheus.NewDesc("probe_dns_query_succeeded", "Displays whether or not the query was executed successfully", nil, nil),
	dnsSerial:     prometheus.NewDesc("probe_dns_serial", "Returns the serial number of the zone", nil, nil),
	icmpDuration:  prometheus.NewDesc("probe_icmp_duration_seconds", "Duration of icmp request by phase", []string{"phase"}, nil),
	icmpHopLimit:  prometheus.NewDesc("probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)", nil, nil),
	grpcDuration:  prometheus.NewDesc("probe_grpc_duration_seconds", "Duration of gRPC request by phase", []string{"phase"}, nil),
	grpcSSL:       prometheus.NewDesc("probe_grpc_ssl", "Indicates if SSL was used for the connection", nil, nil),
	grpcStatus:    prometheus.NewDesc("probe_grpc_status_code", "Response gRPC status code", nil, nil),
	grpcHealth:    prometheus.NewDesc("probe_grpc_healthcheck_response", "Response HealthCheck response", []string{"serving_status"}, nil),
}

// zeroTime is what blackbox reports as the last chain's expiry when no
// chain verified: Go's zero time in Unix seconds.
var zeroTime = float64(time.Time{}.Unix())

// BlackboxMetrics returns the blackbox_exporter metric families of
// attempt a of target t, as blackbox's http, tcp and dns probers name them
// for the same probe: the address family and hash of the address dialed, the
// resolve time, and for a pipeline with an http handshake
// probe_http_duration_seconds{phase=resolve|connect|tls|processing|transfer}
// (processing is the time to the response's first byte, transfer the
// body's), the HTTP version, TLS, redirects, lengths, Last-Modified and
// whether a regexp failed it; for one with tls, the certificates' expiry,
// the leaf's facts and the version and cipher negotiated. A pipeline whose
// dialer is dns-miekg's is blackbox's dns prober: its families
// (probe_dns_duration_seconds{phase=resolve|connect|request}, the reply's
// section counts, probe_dns_query_succeeded, and probe_dns_serial for a
// SOA query) come from the dns phase, the DNS exchange, and the address
// family and hash are the DNS server's, the target's. Families whose facts
// the attempt lacks (a phase that never ran) are absent, as blackbox leaves
// them out of a probe that failed before them. A pipeline whose dialer is
// icmp's is blackbox's icmp prober: probe_icmp_duration_seconds{phase=
// resolve|setup|rtt} and probe_icmp_reply_hop_limit come from the icmp
// phase (icmpMetrics). A pipeline ending in a grpc-health handshake is
// blackbox's grpc prober (grpcMetrics).
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
	resolve := phases["resolve"]
	if resolve != nil {
		gauge(blackbox.dnsLookup, resolve.Duration.Seconds())
	}
	if a.Address.IsValid() {
		addrMetrics(a.Address.Addr(), gauge)
	}
	if dnsProber(t) {
		dnsMetrics(resolve, phases["dns"], gauge)
		return out
	}
	if icmpProber(t) {
		icmpMetrics(resolve, phases["icmp"], gauge)
		return out
	}
	if hasHandshake(t, "grpc-health") {
		grpcMetrics(phases, gauge)
		return out
	}
	regex := 0.0 // the http and tcp probers' regexps: expect_body's here
	if f := a.Failure; f != nil && f.Class == "http.body_mismatch" {
		regex = 1
	}
	gauge(blackbox.regex, regex)
	tls := phases["tls"]
	if tls != nil {
		tlsMetrics(tls, gauge)
	}
	if http := phases["http"]; http != nil || hasHandshake(t, "http") {
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
			if at, ok := attrTime(http, "last_modified"); ok {
				gauge(blackbox.httpLastModified, at)
			}
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

// addrMetrics adds probe_ip_protocol and probe_ip_addr_hash of ip.
func addrMetrics(ip netip.Addr, gauge func(*prometheus.Desc, float64, ...string)) {
	ip = ip.Unmap()
	family := 6.0
	if ip.Is4() {
		family = 4
	}
	gauge(blackbox.ipProtocol, family)
	h := fnv.New32a()
	h.Write(ip.AsSlice()) // 4 bytes for IPv4, 16 for IPv6, as blackbox hashes them
	gauge(blackbox.ipHash, float64(h.Sum32()))
}

// tlsMetrics adds the TLS families of a tls phase: the earliest expiry of
// the certificates sent, and once the handshake succeeded, the last
// chain's expiry (Go's zero time when no chain verified, as blackbox has
// it with insecure_skip_verify) and the leaf's facts.
func tlsMetrics(tls *engine.Phase, gauge func(*prometheus.Desc, float64, ...string)) {
	if at, ok := attrTime(tls, "certs_earliest_not_after"); ok {
		gauge(blackbox.sslExpiry, at)
	} else if at, ok := attrTime(tls, "cert_not_after"); ok {
		gauge(blackbox.sslExpiry, at)
	}
	if v, ok := tls.Attrs["version"].(string); ok {
		gauge(blackbox.tlsVersion, 1, v)
	}
	if c, ok := tls.Attrs["cipher"].(string); ok {
		gauge(blackbox.tlsCipher, 1, c)
	}
	fingerprint, ok := tls.Attrs["cert_fingerprint_sha256"].(string)
	if !tls.OK || !ok {
		return
	}
	chain := zeroTime
	if at, ok := attrTime(tls, "chain_not_after"); ok {
		chain = at
	}
	gauge(blackbox.sslChainExpiry, chain)
	// blackbox's subjectalternative is the leaf's DNS names alone;
	// cert_sans has its IP addresses after them.
	var names []string
	sans, _ := tls.Attrs["cert_sans"].([]string)
	for _, san := range sans {
		if _, err := netip.ParseAddr(san); err != nil {
			names = append(names, san)
		}
	}
	gauge(blackbox.sslChainInfo, 1, fingerprint, attrString(tls, "cert_subject"), attrString(tls, "cert_issuer"),
		strings.Join(names, ","), attrString(tls, "cert_serial"))
}

// dnsProber reports whether t is blackbox's dns prober as probe import
// writes it: a pipeline whose dialer is dns-miekg's, whose dns phase is
// the DNS exchange with the target.
func dnsProber(t *engine.Target) bool {
	return t != nil && t.Pipeline != nil && t.Pipeline.Dialer.Plugin == "dns-miekg"
}

// dnsMetrics returns the families of blackbox's dns prober from the
// resolve phase of the server's name and the dns phase of dns-miekg's
// dialer: connect is the exchange's connection (0 over UDP, all of the
// wait when no reply came, as blackbox counts a failed exchange), request
// its round trip. Without a dns phase (the server's name did not resolve)
// they are 0, with probe_dns_query_succeeded, as blackbox's are.
func dnsMetrics(resolve, q *engine.Phase, gauge func(*prometheus.Desc, float64, ...string)) {
	var lookup, connect, request float64
	if resolve != nil && resolve.OK {
		lookup = resolve.Duration.Seconds()
	}
	replied := false
	if q != nil {
		connect = q.Duration.Seconds()
		_, replied = q.Attrs["rcode"].(string)
	}
	if replied {
		connect, request = attrNumber(q, "connect_ms")/1000, attrNumber(q, "rtt_ms")/1000
	}
	for _, ph := range []struct {
		name string
		v    float64
	}{{"resolve", lookup}, {"connect", connect}, {"request", request}} {
		gauge(blackbox.dnsDuration, ph.v, ph.name)
	}
	succeeded := 0.0
	if replied {
		succeeded = 1
		gauge(blackbox.dnsAnswer, attrNumber(q, "answer_rrs"))
		gauge(blackbox.dnsAuthority, attrNumber(q, "authority_rrs"))
		gauge(blackbox.dnsAdditional, attrNumber(q, "additional_rrs"))
		if q.Attrs["query_type"] == "SOA" {
			gauge(blackbox.dnsSerial, attrNumber(q, "serial"))
		}
	} else {
		for _, d := range []*prometheus.Desc{blackbox.dnsAnswer, blackbox.dnsAuthority, blackbox.dnsAdditional} {
			gauge(d, 0)
		}
	}
	gauge(blackbox.dnsSucceeded, succeeded)
}

// icmpProber reports whether t is blackbox's icmp prober as probe import
// writes it: a pipeline whose dialer is icmp's.
func icmpProber(t *engine.Target) bool {
	return t != nil && t.Pipeline != nil && t.Pipeline.Dialer.Plugin == "icmp"
}

// icmpMetrics returns the families of blackbox's icmp prober from the
// resolve phase and the icmp dialer's phase: setup is the socket's opening
// (setup_ms), rtt the round trip of the replies (rtt_ms, their mean; one
// request as probe import writes it, as blackbox sends), 0 when none came,
// and the hop limit is the first reply's TTL (IPv4) or hop limit (IPv6),
// absent when no reply came or the kernel did not say, as blackbox's is.
func icmpMetrics(resolve, q *engine.Phase, gauge func(*prometheus.Desc, float64, ...string)) {
	var lookup, setup, rtt float64
	if resolve != nil && resolve.OK {
		lookup = resolve.Duration.Seconds()
	}
	if q != nil {
		setup, rtt = attrNumber(q, "setup_ms")/1000, attrNumber(q, "rtt_ms")/1000
	}
	for _, ph := range []struct {
		name string
		v    float64
	}{{"resolve", lookup}, {"setup", setup}, {"rtt", rtt}} {
		gauge(blackbox.icmpDuration, ph.v, ph.name)
	}
	if q == nil {
		return
	}
	for _, name := range []string{"ttl", "hop_limit"} {
		if _, ok := q.Attrs[name]; ok {
			gauge(blackbox.icmpHopLimit, attrNumber(q, name))
		}
	}
}

// healthStatuses are the serving statuses of grpc.health.v1, each of
// which blackbox's probe_grpc_healthcheck_response has a series of.
var healthStatuses = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// unavailable is gRPC's status code Unavailable, blackbox's
// probe_grpc_status_code when the connection failed.
const unavailable = 14

// grpcMetrics returns the families of blackbox's grpc prober from an
// attempt's phases: probe_grpc_duration_seconds{phase=resolve} the resolve
// phase, and once it resolved {phase=check} the connection, TLS and the
// health call together (blackbox's check, grpc-go dialling lazily within
// the call); the call's status code (Unavailable when the connection or
// TLS failed, 0 when the name did not resolve), its serving status as
// probe_grpc_healthcheck_response (1 for the status answered, 0 for the
// others), and probe_grpc_ssl, probe_ssl_earliest_cert_expiry (0 without)
// and the TLS version when the call was answered over TLS. The leaf's
// facts (probe_ssl_last_chain_info) are not mapped for grpc.
func grpcMetrics(phases map[string]*engine.Phase, gauge func(*prometheus.Desc, float64, ...string)) {
	resolve, connect, tls, call := phases["resolve"], phases["connect"], phases["tls"], phases["grpc"]
	var lookup float64
	if resolve != nil && resolve.OK {
		lookup = resolve.Duration.Seconds()
	}
	gauge(blackbox.grpcDuration, lookup, "resolve")
	code, answered := 0.0, call != nil && call.Attrs["status"] != nil
	if connect != nil {
		var check float64
		for _, p := range []*engine.Phase{connect, tls, call} {
			if p != nil {
				check += p.Duration.Seconds()
			}
		}
		gauge(blackbox.grpcDuration, check, "check")
		code = unavailable
		if call != nil {
			code = attrNumber(call, "code_number")
		}
		var status string
		if call != nil {
			status = attrString(call, "status")
		}
		for _, s := range healthStatuses {
			v := 0.0
			if s == status {
				v = 1
			}
			gauge(blackbox.grpcHealth, v, s)
		}
	}
	gauge(blackbox.grpcStatus, code)
	ssl, expiry := 0.0, 0.0
	if answered && tls != nil && tls.OK {
		ssl = 1
		if at, ok := attrTime(tls, "certs_earliest_not_after"); ok {
			expiry = at
		} else if at, ok := attrTime(tls, "cert_not_after"); ok {
			expiry = at
		}
		if v, ok := tls.Attrs["version"].(string); ok {
			gauge(blackbox.tlsVersion, 1, v)
		}
	}
	gauge(blackbox.grpcSSL, ssl)
	gauge(blackbox.sslExpiry, expiry)
}

// hasHandshake reports whether t's pipeline has a handshake of plugin: a
// probe of one with an http handshake has blackbox's http families even
// when it failed early.
func hasHandshake(t *engine.Target, plugin string) bool {
	if t == nil || t.Pipeline == nil {
		return false
	}
	for _, h := range t.Pipeline.Handshakes {
		if h.Plugin == plugin {
			return true
		}
	}
	return false
}

// attrTime returns an RFC 3339 attribute as Unix seconds.
func attrTime(p *engine.Phase, name string) (float64, bool) {
	s, ok := p.Attrs[name].(string)
	if !ok {
		return 0, false
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, false
	}
	return float64(at.Unix()), true
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

// BlackboxSink keeps the latest attempt of each target, and adds blackbox's
// families of each to -o prometheus: /probe's own (probe_success,
// probe_duration_seconds, probe_http_status_code, ...) and BlackboxMetrics,
// each series labelled target="NAME", where a scrape of /probe has the
// instance label Prometheus adds. It is a sink and a report.Registrar,
// safe for concurrent use.
type BlackboxSink struct {
	targets map[string]*engine.Target
	mu      sync.Mutex
	latest  map[string]*engine.Attempt
}

// NewBlackboxSink returns a BlackboxSink of the attempts of targets.
func NewBlackboxSink(targets []*engine.Target) *BlackboxSink {
	b := &BlackboxSink{targets: map[string]*engine.Target{}, latest: map[string]*engine.Attempt{}}
	for _, t := range targets {
		b.targets[t.Name] = t
	}
	return b
}

// Attempt keeps a when it is its target's latest.
func (b *BlackboxSink) Attempt(a *engine.Attempt) error {
	latest := *a
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev := b.latest[a.Target]; prev == nil || !a.Started.Before(prev.Started) {
		b.latest[a.Target] = &latest
	}
	return nil
}

// Flush does nothing: the metrics are written by the sink that registers
// b.
func (b *BlackboxSink) Flush() error { return nil }

// Close does nothing, as Flush.
func (b *BlackboxSink) Close(*engine.Result) error { return nil }

// Register registers the families of each target's latest attempt in reg.
func (b *BlackboxSink) Register(reg prometheus.Registerer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.latest))
	for name := range b.latest {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := b.latest[name]
		r := prometheus.WrapRegistererWith(prometheus.Labels{"target": name}, reg)
		if err := r.Register(report.NewAttemptCollector(a)); err != nil {
			return fmt.Errorf("target %s: %w", name, err)
		}
		if err := r.Register(blackboxCollector{a, b.targets[name]}); err != nil {
			return fmt.Errorf("target %s: blackbox names: %w", name, err)
		}
	}
	return nil
}

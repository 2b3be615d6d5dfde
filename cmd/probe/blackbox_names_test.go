package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
)

// blackboxExact are the blackbox families TestBlackboxNames compares by
// value, blackboxDurations those it compares within blackboxTolerance.
var (
	blackboxExact = []string{"probe_success", "probe_http_status_code", "probe_http_version", "probe_http_ssl",
		"probe_http_redirects", "probe_ssl_earliest_cert_expiry", "probe_tls_version_info", "probe_ip_protocol",
		"probe_ip_addr_hash", "probe_http_content_length", "probe_http_uncompressed_body_length", "probe_failed_due_to_regex",
		"probe_http_last_modified_timestamp_seconds", "probe_ssl_last_chain_expiry_timestamp_seconds", "probe_ssl_last_chain_info",
		"probe_dns_answer_rrs", "probe_dns_authority_rrs", "probe_dns_additional_rrs", "probe_dns_query_succeeded", "probe_dns_serial",
		"probe_icmp_reply_hop_limit", "probe_grpc_status_code", "probe_grpc_ssl", "probe_grpc_healthcheck_response"}
	blackboxDurations = []string{"probe_duration_seconds", "probe_dns_lookup_time_seconds", "probe_http_duration_seconds",
		"probe_dns_duration_seconds", "probe_icmp_duration_seconds",
		"probe_grpc_duration_seconds"}
)

// blackboxTolerance is how far apart a duration of blackbox and of probe
// may be: on loopback both measure a few milliseconds, and what tells them
// apart is the noise of a machine shared with other tests (a scheduling
// delay of tens of milliseconds is common there under load).
const blackboxTolerance = 0.25

// TestBlackboxNames runs the real blackbox_exporter (Debian's package) and
// probe serve on the same imported configuration against the same servers
// (nginx over HTTPS with h2, the lab's TLS server, unbound for DNS: an A,
// a SOA and an MX query checked by regexps, and a TXT query a regexp
// fails; an icmp module pinging 127.0.0.1; grpc modules asking grpc-go's
// health server about a service serving, one not, and one unknown), asks
// each /probe in blackbox's own form (?module=NAME&target=...), and
// compares: every blackbox family probe maps that blackbox emits comes
// from both with the same labels, facts (status, versions, expiry, the
// certificate's fingerprint, Last-Modified, the DNS reply's counts, the
// address hash) with the same value, and durations within
// blackboxTolerance. Then a real Prometheus scrapes both, and the same
// comparison runs through PromQL.
func TestBlackboxNames(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		t.Fatalf("this test needs the Debian package prometheus-blackbox-exporter (see .ci/deps): %v", err)
	}
	unbound, err := daemon.StartUnbound(daemon.UnboundConfig{}) // api.probe.test. A 127.0.0.1, and daemon.UnboundZone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unbound.Close() })
	dir := t.TempDir()
	bb := writeFileIn(t, dir, "blackbox.yml", fmt.Sprintf(`modules:
  https_2xx:
    prober: http
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        ca_file: %[1]q
  tls_connect:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls: true
      tls_config:
        ca_file: %[1]q
  dns_a:
    prober: dns
    dns:
      query_name: api.probe.test
      query_type: A
      transport_protocol: udp
      valid_rcodes: [NOERROR]
  dns_soa:
    prober: dns
    dns:
      query_name: zone.probe.test
      query_type: SOA
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["\\tSOA\\t"]
  dns_mx:
    prober: dns
    dns:
      query_name: zone.probe.test
      query_type: MX
      transport_protocol: tcp
      valid_rcodes: [NOERROR, NXDOMAIN]
      validate_answer_rrs:
        fail_if_none_matches_regexp: ["MX\\t10 mail\\.zone\\.probe\\.test\\.$"]
      validate_authority_rrs:
        fail_if_matches_regexp: ["."]
  dns_txt:
    prober: dns
    dns:
      query_name: zone.probe.test
      query_type: TXT
      validate_answer_rrs:
        fail_if_matches_regexp: ["v=spf1"]
  ping:
    prober: icmp
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  grpc_api:
    prober: grpc
    grpc:
      service: api
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  grpc_batch:
    prober: grpc
    grpc:
      service: batch
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  grpc_nosuch:
    prober: grpc
    grpc:
      service: nosuch
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
`, testLab.CAFile))
	web := startNginx(t)
	https := fmt.Sprintf("https://127.0.0.1:%d/", web)
	missing := fmt.Sprintf("https://127.0.0.1:%d/missing", web)
	redirect := fmt.Sprintf("https://127.0.0.1:%d/redirect", web)
	expired := fmt.Sprintf("https://127.0.0.1:%d/", testLab.Expired.Addr.Port())
	tlsTarget := fmt.Sprintf("127.0.0.1:%d", testLab.TLS.Addr.Port())
	dnsTarget := unbound.Addr.String()
	pingTarget := "127.0.0.1"
	grpcHealth, err := lab.StartGRPCHealth(nil) // api SERVING, batch NOT_SERVING
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grpcHealth.Close() })
	grpcTarget := grpcHealth.Addr.String()
	prom := writeFileIn(t, dir, "prometheus.yml", fmt.Sprintf(`scrape_configs:
  - job_name: web
    metrics_path: /probe
    params: {module: [https_2xx]}
    static_configs: [{targets: [%q, %q, %q, %q]}]
  - job_name: tls
    metrics_path: /probe
    params: {module: [tls_connect]}
    static_configs: [{targets: [%q]}]
  - job_name: dns
    metrics_path: /probe
    params: {module: [dns_a]}
    static_configs: [{targets: [%[6]q]}]
  - job_name: dns-soa
    metrics_path: /probe
    params: {module: [dns_soa]}
    static_configs: [{targets: [%[6]q]}]
  - job_name: dns-mx
    metrics_path: /probe
    params: {module: [dns_mx]}
    static_configs: [{targets: [%[6]q]}]
  - job_name: dns-txt
    metrics_path: /probe
    params: {module: [dns_txt]}
    static_configs: [{targets: [%[6]q]}]
  - job_name: ping
    metrics_path: /probe
    params: {module: [ping]}
    static_configs: [{targets: [%[7]q]}]
  - job_name: grpc-api
    metrics_path: /probe
    params: {module: [grpc_api]}
    static_configs: [{targets: [%[8]q]}]
  - job_name: grpc-batch
    metrics_path: /probe
    params: {module: [grpc_batch]}
    static_configs: [{targets: [%[8]q]}]
  - job_name: grpc-nosuch
    metrics_path: /probe
    params: {module: [grpc_nosuch]}
    static_configs: [{targets: [%[8]q]}]
`, https, missing, redirect, expired, tlsTarget, dnsTarget, pingTarget, grpcTarget))
	hcl := filepath.Join(dir, "blackbox.hcl")
	wantExit(t, probe(t, nil, "import", "blackbox", bb, "--prometheus", prom, "-o", hcl), exitOK)
	srv := startServe(t, hcl)

	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+bb, "--web.listen-address="+listen, "--log.level=error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + listen + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("blackbox_exporter is not answering after 10s")
		}
	}

	// The certificates nginx and the lab's TLS server send, whose facts
	// blackbox must report (so that the comparison is not of empty labels).
	webLeaf, tlsLeaf := leafOf(t, fmt.Sprintf("127.0.0.1:%d", web)), leafOf(t, tlsTarget)
	chainInfo := func(leaf *x509.Certificate) string {
		return fmt.Sprintf("{fingerprint_sha256=%q,issuer=%q,serialnumber=%q,subject=%q,subjectalternative=%q}",
			fmt.Sprintf("%x", sha256.Sum256(leaf.Raw)), leaf.Issuer.String(), fmt.Sprintf("%x", leaf.SerialNumber.Bytes()),
			leaf.Subject.String(), strings.Join(leaf.DNSNames, ","))
	}
	// What the servers make blackbox say, so that the comparison below is
	// not of zeros: by target, or by module and target for the DNS server
	// that four modules ask.
	facts := map[string]map[string]float64{
		https: {"probe_success": 1, "probe_http_status_code": 200, "probe_http_version": 2, "probe_http_ssl": 1, "probe_http_content_length": 3,
			"probe_http_last_modified_timestamp_seconds":     float64(nginxModified.Unix()),
			"probe_ssl_last_chain_expiry_timestamp_seconds":  float64(webLeaf.NotAfter.Unix()), // the leaf ends before the CA
			"probe_ssl_last_chain_info" + chainInfo(webLeaf): 1},
		missing:  {"probe_success": 0, "probe_http_status_code": 404, "probe_http_version": 2},
		redirect: {"probe_success": 1, "probe_http_status_code": 200, "probe_http_redirects": 1},
		expired:  {"probe_success": 0, "probe_http_status_code": 0},
		tlsTarget: {"probe_success": 1, "probe_ssl_last_chain_expiry_timestamp_seconds": float64(tlsLeaf.NotAfter.Unix()),
			"probe_ssl_last_chain_info" + chainInfo(tlsLeaf): 1},
		// Without EDNS0 (blackbox sends no OPT record), unbound answers
		// the one A record and nothing else.
		"dns_a " + dnsTarget: {"probe_success": 1, "probe_dns_answer_rrs": 1, "probe_dns_authority_rrs": 0, "probe_dns_additional_rrs": 0,
			"probe_dns_query_succeeded": 1},
		// The zone's SOA, its serial, and regexps that pass; a regexp
		// that fails the TXT query after a reply came.
		"dns_soa " + dnsTarget: {"probe_success": 1, "probe_dns_answer_rrs": 1, "probe_dns_authority_rrs": 0, "probe_dns_additional_rrs": 0,
			"probe_dns_query_succeeded": 1, "probe_dns_serial": daemon.UnboundSerial},
		"dns_mx " + dnsTarget:  {"probe_success": 1, "probe_dns_answer_rrs": 1, "probe_dns_query_succeeded": 1},
		"dns_txt " + dnsTarget: {"probe_success": 0, "probe_dns_answer_rrs": 1, "probe_dns_query_succeeded": 1},
		// Linux's default TTL, unchanged over loopback.
		pingTarget: {"probe_success": 1, "probe_icmp_reply_hop_limit": 64},
		// grpc-go's health server: a service SERVING, one NOT_SERVING,
		// and one it does not know (NotFound, 5), over plain HTTP/2.
		"grpc_api " + grpcTarget:    {"probe_success": 1, "probe_grpc_status_code": 0, "probe_grpc_ssl": 0},
		"grpc_batch " + grpcTarget:  {"probe_success": 0, "probe_grpc_status_code": 0},
		"grpc_nosuch " + grpcTarget: {"probe_success": 0, "probe_grpc_status_code": 5},
	}
	cases := []struct{ module, target string }{
		{"https_2xx", https}, {"https_2xx", missing}, {"https_2xx", redirect}, {"https_2xx", expired}, {"tls_connect", tlsTarget},
		{"dns_a", dnsTarget}, {"dns_soa", dnsTarget}, {"dns_mx", dnsTarget}, {"dns_txt", dnsTarget},
		{"ping", pingTarget}, {"grpc_api", grpcTarget}, {"grpc_batch", grpcTarget}, {"grpc_nosuch", grpcTarget},
	}
	// The name each case's target has in the imported file: the scrape's
	// for the first job that lists it, with the module after for the
	// others (TestImportBlackbox).
	named := map[string]string{}
	for _, c := range cases {
		if _, taken := named[c.target]; taken {
			named[c.module+" "+c.target] = fmt.Sprintf("%s (%s)", c.target, c.module)
		} else {
			named[c.target], named[c.module+" "+c.target] = c.target, c.target
		}
	}
	blackboxSays := map[string]map[string]map[string]float64{} // by the target's name in the imported file
	for _, c := range cases {
		q := "/probe?" + url.Values{"module": {c.module}, "target": {c.target}}.Encode()
		scrapeSeries(t, "http://"+listen+q) // warm-up: the first probe of either pays for its start
		scrapeSeries(t, "http://"+srv.addr+q)
		want := byFamily(scrapeSeries(t, "http://"+listen+q), nil)
		got := byFamily(scrapeSeries(t, "http://"+srv.addr+q), olderBlackbox(want))
		ours := byFamily(scrapeSeries(t, "http://"+srv.addr+q), nil)
		caseFacts := facts[c.target]
		if caseFacts == nil {
			caseFacts = facts[c.module+" "+c.target]
		}
		if len(caseFacts) == 0 {
			t.Fatalf("no facts for %s %s", c.module, c.target)
		}
		for fact, v := range caseFacts {
			name, series, _ := strings.Cut(fact, "{")
			series = "{" + series
			if name == "probe_ssl_last_chain_info" {
				// probe's, with the serial number; blackbox's may lack it.
				if ours[name][series] != v {
					t.Errorf("%s %s: probe has %s %v, want %s", c.module, c.target, name, keys(ours[name]), series)
				}
				continue
			}
			if want[name]["{}"] != v {
				t.Errorf("%s %s: blackbox says %s %v, want %v", c.module, c.target, name, want[name]["{}"], v)
			}
		}
		blackboxSays[named[c.module+" "+c.target]] = want
		compareFamilies(t, c.module+" "+c.target, want, got)
		for name := range want {
			if strings.HasPrefix(name, "probe_") && !contains(blackboxExact, name) && !contains(blackboxDurations, name) {
				t.Errorf("%s %s: blackbox emits %s, which this test does not compare", c.module, c.target, name)
			}
		}
		if t.Failed() {
			out, _ := os.ReadFile(hcl)
			t.Logf("blackbox %s:\n%v\nprobe:\n%v\nfile:\n%s", q, want, got, out)
		}
	}

	// -o prometheus: the same families of each target's latest attempt,
	// labelled target, with --blackbox-names or the file's serve {
	// blackbox_names = true }, and none without either.
	src, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	plain := writeFileIn(t, dir, "plain.hcl", regexp.MustCompile(`(?s)serve \{.*?\n\}`).ReplaceAllString(string(src), ""))
	textOf := func(args ...string) map[string][]sample {
		r := probe(t, nil, append([]string{"run", "-o", "prometheus"}, args...)...)
		wantExit(t, r, exitFailed) // the 404 and the expired certificate
		byTarget := map[string][]sample{}
		for _, s := range parseText(t, r.stdout) {
			if target, ok := s.labels["target"]; ok && !strings.HasPrefix(s.labels["__name__"], "probe_scheduled_") &&
				!strings.HasPrefix(s.labels["__name__"], "probe_attempt") {
				delete(s.labels, "target")
				byTarget[target] = append(byTarget[target], s)
			}
		}
		return byTarget
	}
	text := textOf(plain, "--blackbox-names")
	for target, want := range blackboxSays {
		compareFamilies(t, "-o prometheus --blackbox-names "+target, want, byFamily(text[target], olderBlackbox(want)))
	}
	if got := byFamily(textOf(hcl)[https], nil)["probe_http_version"]; got["{}"] != 2 {
		t.Errorf("-o prometheus of a file with serve { blackbox_names = true }: probe_http_version{target=%q} %v, want 2", https, got)
	}
	if got := textOf(plain); len(got) != 0 {
		t.Errorf("-o prometheus without blackbox names: %v, want no series labelled target but probe_scheduled_* and probe_attempt*", got)
	}

	// A real Prometheus scrapes both with the same jobs but the address:
	// every family comes from both, per job and instance, with the same
	// labels, the same value, or a duration within blackboxTolerance.
	job := func(name, addr string) string {
		return fmt.Sprintf(`
  - job_name: %[1]s-web
    metrics_path: /probe
    params: {module: [https_2xx]}
    static_configs: [{targets: [%[3]q, %[4]q, %[5]q, %[6]q]}]
    relabel_configs: &relabel
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %[2]s
  - job_name: %[1]s-tls
    metrics_path: /probe
    params: {module: [tls_connect]}
    static_configs: [{targets: [%[7]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-dns
    metrics_path: /probe
    params: {module: [dns_a]}
    static_configs: [{targets: [%[8]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-dns-soa
    metrics_path: /probe
    params: {module: [dns_soa]}
    static_configs: [{targets: [%[8]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-dns-mx
    metrics_path: /probe
    params: {module: [dns_mx]}
    static_configs: [{targets: [%[8]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-dns-txt
    metrics_path: /probe
    params: {module: [dns_txt]}
    static_configs: [{targets: [%[8]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-ping
    metrics_path: /probe
    params: {module: [ping]}
    static_configs: [{targets: [%[9]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-grpc-api
    metrics_path: /probe
    params: {module: [grpc_api]}
    static_configs: [{targets: [%[10]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-grpc-batch
    metrics_path: /probe
    params: {module: [grpc_batch]}
    static_configs: [{targets: [%[10]q]}]
    relabel_configs: *relabel
  - job_name: %[1]s-grpc-nosuch
    metrics_path: /probe
    params: {module: [grpc_nosuch]}
    static_configs: [{targets: [%[10]q]}]
    relabel_configs: *relabel`, name, addr, https, missing, redirect, expired, tlsTarget, dnsTarget, pingTarget, grpcTarget)
	}
	p := startPrometheus(t, "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:"+
		job("blackbox", listen)+job("probe", srv.addr)+"\n", nil)
	p.eventually(`probe_success{job=~"blackbox-.*"}`, len(cases))
	p.eventually(`probe_success{job=~"probe-.*"}`, len(cases))
	from := func(exporter string) []sample {
		var out []sample
		for _, name := range append(slices.Clone(blackboxExact), blackboxDurations...) {
			for _, s := range p.query(fmt.Sprintf(`%s{job=~"%s-.*"}`, name, exporter)) {
				s.labels["job"] = strings.TrimPrefix(s.labels["job"], exporter+"-") // dns-soa, the same for both
				out = append(out, s)
			}
		}
		return out
	}
	want := byFamily(from("blackbox"), nil)
	got := byFamily(from("probe"), olderBlackbox(want))
	for _, name := range append(slices.Clone(blackboxExact), blackboxDurations...) {
		if len(want[name]) == 0 {
			t.Errorf("Prometheus has no %s from blackbox_exporter", name)
		}
	}
	compareFamilies(t, "Prometheus", want, got)
}

// compareFamilies checks that every series of want is in got, with the
// same value, or for a duration within blackboxTolerance.
func compareFamilies(t *testing.T, what string, want, got map[string]map[string]float64) {
	t.Helper()
	for _, name := range append(slices.Clone(blackboxExact), blackboxDurations...) {
		for series, v := range want[name] {
			g, ok := got[name][series]
			switch {
			case !ok:
				t.Errorf("%s: blackbox has %s%s = %v, probe has %v", what, name, series, v, keys(got[name]))
			case contains(blackboxExact, name) && g != v:
				t.Errorf("%s: %s%s = %v, blackbox %v", what, name, series, g, v)
			case contains(blackboxDurations, name) && math.Abs(g-v) > blackboxTolerance:
				t.Errorf("%s: %s%s = %v, blackbox %v: more than %v s apart", what, name, series, g, v, blackboxTolerance)
			}
		}
	}
}

// olderBlackbox returns the labels probe has that the blackbox_exporter
// of want predates: probe_ssl_last_chain_info's serialnumber came with
// blackbox v0.25, after Debian 12's v0.23.
func olderBlackbox(want map[string]map[string]float64) map[string]string {
	for series := range want["probe_ssl_last_chain_info"] {
		if !strings.Contains(series, "serialnumber=") {
			return map[string]string{"probe_ssl_last_chain_info": "serialnumber"}
		}
	}
	return nil
}

// leafOf returns the certificate the TLS server at addr sends first.
func leafOf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the certificate is what is read, not trusted
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// scrapeSeries fetches metrics from u: a sample per series, its family's
// name as __name__.
func scrapeSeries(t *testing.T, u string) []sample {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", u, resp.StatusCode, err, body)
	}
	return parseText(t, string(body))
}

// parseText parses metrics in Prometheus's text format: a sample per
// series, its family's name as __name__.
func parseText(t *testing.T, text string) []sample {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var out []sample
	for name, mf := range families {
		for _, m := range mf.Metric {
			labels := map[string]string{"__name__": name}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, sample{labels, m.GetGauge().GetValue()})
		}
	}
	return out
}

// byFamily indexes samples by family name, then by label set as printed
// ({phase="tls"}), leaving out the label drop names for a family.
func byFamily(samples []sample, drop map[string]string) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, s := range samples {
		name := s.labels["__name__"]
		var labels []string
		for k, v := range s.labels {
			if k != "__name__" && k != drop[name] {
				labels = append(labels, fmt.Sprintf("%s=%q", k, v))
			}
		}
		sort.Strings(labels)
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name]["{"+strings.Join(labels, ",")+"}"] = s.value
	}
	return out
}

func keys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestBlackboxNames runs the real blackbox_exporter (Debian's package) and
// probe serve on the same imported configuration against the same lab
// servers, asks each /probe in blackbox's own form
// (?module=NAME&target=...), and compares: every blackbox family probe
// maps that blackbox emits comes from both with the same labels, facts
// (status, versions, expiry, address hash) with the same value, and
// durations within 50 ms of each other: on loopback both measure a few
// milliseconds, and the machine's noise is what tells them apart.
func TestBlackboxNames(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		t.Fatalf("this test needs the Debian package prometheus-blackbox-exporter (see .ci/deps): %v", err)
	}
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
`, testLab.CAFile))
	web := startNginx(t)
	https := fmt.Sprintf("https://127.0.0.1:%d/", web)
	missing := fmt.Sprintf("https://127.0.0.1:%d/missing", web)
	redirect := fmt.Sprintf("https://127.0.0.1:%d/redirect", web)
	expired := fmt.Sprintf("https://127.0.0.1:%d/", testLab.Expired.Addr.Port())
	tlsTarget := fmt.Sprintf("127.0.0.1:%d", testLab.TLS.Addr.Port())
	prom := writeFileIn(t, dir, "prometheus.yml", fmt.Sprintf(`scrape_configs:
  - job_name: web
    metrics_path: /probe
    params: {module: [https_2xx]}
    static_configs: [{targets: [%q, %q, %q, %q]}]
  - job_name: tls
    metrics_path: /probe
    params: {module: [tls_connect]}
    static_configs: [{targets: [%q]}]
`, https, missing, redirect, expired, tlsTarget))
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

	exact := []string{"probe_success", "probe_http_status_code", "probe_http_version", "probe_http_ssl",
		"probe_http_redirects", "probe_ssl_earliest_cert_expiry", "probe_tls_version_info", "probe_ip_protocol",
		"probe_ip_addr_hash", "probe_http_content_length", "probe_http_uncompressed_body_length", "probe_failed_due_to_regex"}
	durations := []string{"probe_duration_seconds", "probe_dns_lookup_time_seconds", "probe_http_duration_seconds"}
	// Families blackbox emits that probe does not map yet: its chain's
	// expiry and fingerprint need the whole chain, which the tls plugin
	// does not report.
	unmapped := map[string]bool{"probe_ssl_last_chain_expiry_timestamp_seconds": true, "probe_ssl_last_chain_info": true}
	facts := map[string]map[string]float64{
		https:    {"probe_success": 1, "probe_http_status_code": 200, "probe_http_version": 2, "probe_http_ssl": 1, "probe_http_content_length": 3},
		missing:  {"probe_success": 0, "probe_http_status_code": 404, "probe_http_version": 2},
		redirect: {"probe_success": 1, "probe_http_status_code": 200, "probe_http_redirects": 1},
		expired:  {"probe_success": 0, "probe_http_status_code": 0},
	}
	for _, c := range []struct{ module, target string }{
		{"https_2xx", https}, {"https_2xx", missing}, {"https_2xx", redirect}, {"https_2xx", expired}, {"tls_connect", tlsTarget},
	} {
		q := "/probe?" + url.Values{"module": {c.module}, "target": {c.target}}.Encode()
		scrapeSeries(t, "http://"+listen+q) // warm-up: the first probe of either pays for its start
		scrapeSeries(t, "http://"+srv.addr+q)
		want := scrapeSeries(t, "http://"+listen+q)
		got := scrapeSeries(t, "http://"+srv.addr+q)
		// What the servers make blackbox say, so that the comparison
		// below is not of zeros.
		for name, v := range facts[c.target] {
			if want[name]["{}"] != v {
				t.Errorf("%s %s: blackbox says %s %v, want %v", c.module, c.target, name, want[name]["{}"], v)
			}
		}
		for _, name := range append(exact, durations...) {
			for series, v := range want[name] {
				g, ok := got[name][series]
				switch {
				case !ok:
					t.Errorf("%s %s: blackbox has %s%s = %v, probe has %v", c.module, c.target, name, series, v, keys(got[name]))
				case contains(exact, name) && g != v:
					t.Errorf("%s %s: %s%s = %v, blackbox %v", c.module, c.target, name, series, g, v)
				case contains(durations, name) && math.Abs(g-v) > 0.25:
					t.Errorf("%s %s: %s%s = %v, blackbox %v: more than 250 ms apart", c.module, c.target, name, series, g, v)
				}
			}
		}
		for name := range want {
			if strings.HasPrefix(name, "probe_") && !contains(exact, name) && !contains(durations, name) && !unmapped[name] {
				t.Errorf("%s %s: blackbox emits %s, which this test does not compare", c.module, c.target, name)
			}
		}
		if t.Failed() {
			out, _ := os.ReadFile(hcl)
			t.Logf("blackbox %s:\n%v\nprobe:\n%v\nfile:\n%s", q, want, got, out)
		}
	}

	// A real Prometheus scrapes both with the same jobs but the address:
	// each family of exact comes from both, per instance, with the same
	// labels and value.
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
    relabel_configs: *relabel`, name, addr, https, missing, redirect, expired, tlsTarget)
	}
	p := startPrometheus(t, "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:"+
		job("blackbox", listen)+job("probe", srv.addr)+"\n", nil)
	p.eventually(`probe_success{job=~"blackbox-.*"}`, 5)
	p.eventually(`probe_success{job=~"probe-.*"}`, 5)
	for _, name := range exact {
		series := func(exporter string) map[string]float64 {
			out := map[string]float64{}
			for _, s := range p.query(fmt.Sprintf(`%s{job=~"%s-.*"}`, name, exporter)) {
				delete(s.labels, "job")
				delete(s.labels, "__name__")
				out[fmt.Sprint(s.labels)] = s.value
			}
			return out
		}
		want, got := series("blackbox"), series("probe")
		if len(want) == 0 {
			t.Errorf("Prometheus has no %s from blackbox_exporter", name)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("Prometheus: %s%s is %v from blackbox, %v (present %v) from probe", name, k, v, g, ok)
			}
		}
	}
}

// scrapeSeries fetches metrics from u: by family name, by label set as
// printed ({phase="tls"}), the value.
func scrapeSeries(t *testing.T, u string) map[string]map[string]float64 {
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
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
	out := map[string]map[string]float64{}
	for name, mf := range families {
		out[name] = map[string]float64{}
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			out[name]["{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
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

package blackbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNotes converts testdata/options.yml, whose lines that must draw a
// note end in "# NOTE: OPTION", and checks that exactly those notes come,
// on those lines, and that no secret of the YAML is in the file.
func TestNotes(t *testing.T) {
	const path = "testdata/options.yml"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		if _, option, ok := strings.Cut(sc.Text(), "# NOTE: "); ok {
			want = append(want, fmt.Sprintf("%d %s", line, option))
		}
	}
	res, err := Convert(path, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range res.Notes {
		got = append(got, fmt.Sprintf("%d %s", n.Line, n.Option))
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notes (-want +got):\n%s\nall notes:\n%s", diff, notes(res.Notes))
	}
	for _, secret := range []string{"hunter2-in-yaml", "s3cr3t-in-yaml"} {
		if bytes.Contains(res.HCL, []byte(secret)) {
			t.Errorf("the pipeline file holds the secret %q:\n%s", secret, res.HCL)
		}
	}
	if diff := cmp.Diff([]string{"web_password", "token_bearer_token"}, res.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	hcl := spaces.ReplaceAllString(string(res.HCL), " ")
	for _, want := range []string{
		`resolver "system_ip4" { plugin = "dns-system" network = "ip4" }`,
		`handshake "web_tls" { plugin = "tls" alpn = ["h2", "http/1.1"] server_name = "api.probe.test" ca_file = "ca.pem" insecure_skip_verify = false min_version = "1.2" }`,
		`handshake "web" { plugin = "http" method = "HEAD" host = "www.probe.test" headers = { "Accept" = "text/html" ` +
			`"Authorization" = format("Basic %s", base64encode(format("%s:%s", "prober", var.web_password))) } ` +
			`expect_status = ["200", "301"] expect_body = "ok" }`, // no follow_redirects: no_follow_redirects
		`"Authorization" = format("Bearer %s", var.token_bearer_token)`,
		`handshake "h2only_tls" { plugin = "tls" alpn = ["h2"] }`,
		`pipeline "web" { resolvers = [resolver.system_ip4] dialer = dialer.tcp handshakes = [handshake.web_tls, handshake.web] }`,
		`pipeline "tls_connect" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.tls_connect_tls] }`,
		`dialer "ping_icmp" { plugin = "icmp" size = 100 source = "127.0.0.1" }`,
		`pipeline "ping" { resolvers = [resolver.system_ip4] dialer = dialer.ping_icmp }`,
		`handshake "health_tls" { plugin = "tls" alpn = ["h2"] ca_file = "ca.pem" }`,
		`handshake "health_grpc" { plugin = "grpc-health" service = "api.v1.Orders" }`,
		`pipeline "health" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.health_tls, handshake.health_grpc] }`,
		`handshake "ssh_ssh" { plugin = "ssh" }`,
		`pipeline "ssh" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.ssh_ssh] }`,
		`pipeline "irc" { resolvers = [resolver.system] dialer = dialer.tcp }`,
		`dialer "resolve_dns" { plugin = "dns-miekg" query_name = "api.probe.test" query_type = "A" transport = "tcp" recursion_desired = false ` +
			`edns_buffer_size = 0 valid_rcodes = ["NOERROR"] validate_answer_rrs = { fail_if_not_matches_regexp = ["127.0.0.1"] } }`,
		`pipeline "resolve" { resolvers = [resolver.system] dialer = dialer.resolve_dns }`,
		`dialer "soa_dns" { plugin = "dns-miekg" query_name = "probe.test" query_type = "SOA" transport = "tls" server_name = "dns.probe.test" ca_file = "ca.pem" ` +
			`edns_buffer_size = 0 valid_rcodes = ["NOERROR", "NXDOMAIN"] validate_authority_rrs = { fail_if_matches_regexp = ["SOA"] } ` +
			`validate_additional_rrs = { fail_if_all_match_regexp = ["OPT"] fail_if_none_matches_regexp = ["OPT"] } }`,
		`dialer "any_dns" { plugin = "dns-miekg" query_name = "probe.test" query_type = "ANY" transport = "udp" edns_buffer_size = 0 }`,
	} {
		if !strings.Contains(hcl, want) {
			t.Errorf("the pipeline file lacks %s:\n%s", want, res.HCL)
		}
	}
	if diff := cmp.Diff(map[string][]string{"web": {"web"}, "token": {"token"}, "h2only": {"h2only"}, "tls_connect": {"tls_connect"}, "typo": {"typo"},
		"ping": {"ping"}, "health": {"health"}, "ssh": {"ssh"}, "irc": {"irc"}, "resolve": {"resolve"}, "soa": {"soa"}, "any": {"any"}},
		res.Modules); diff != "" {
		t.Errorf("pipelines by module (-want +got):\n%s", diff)
	}
}

var spaces = regexp.MustCompile(`\s+`)

func notes(ns []Note) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintln(&b, n)
	}
	return b.String()
}

// TestDebianExample converts the configuration Debian's
// prometheus-blackbox-exporter installs (.ci/deps installs the package):
// its http, tcp, grpc and icmp modules become pipelines, and every option
// that does not carry over as blackbox meant it is a note with its line.
func TestDebianExample(t *testing.T) {
	const path = "/etc/prometheus/blackbox.yml"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("this test needs the Debian package prometheus-blackbox-exporter (see .ci/deps): %v", err)
	}
	res, err := Convert(path, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"http_2xx", "http_post_2xx", "tcp_connect", "pop3s_banner", "grpc", "grpc_plain", "ssh_banner",
		"irc_banner", "icmp", "icmp_ttl5"}, res.Pipelines); diff != "" {
		t.Errorf("pipelines (-want +got):\n%s", diff)
	}
	var got []string
	for _, n := range res.Notes {
		got = append(got, fmt.Sprintf("%d %s %s", n.Line, n.Module, n.Option))
	}
	// ssh_banner's query_response becomes an ssh handshake (noted), the
	// others are not expressible.
	want := []string{
		"13 pop3s_banner tcp.query_response", "22 grpc grpc.preferred_ip_protocol",
		"31 ssh_banner tcp.query_response", "37 irc_banner tcp.query_response", "47 icmp_ttl5 timeout", "49 icmp_ttl5 icmp.ttl",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notes (-want +got):\n%s\nall notes:\n%s", diff, notes(res.Notes))
	}
	hcl := spaces.ReplaceAllString(string(res.HCL), " ")
	for _, want := range []string{
		`pipeline "grpc" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.grpc_tls, handshake.grpc_grpc] }`,
		`handshake "grpc_plain_grpc" { plugin = "grpc-health" service = "service1" }`,
		`pipeline "ssh_banner" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.ssh_banner_ssh] }`,
		`pipeline "icmp_ttl5" { resolvers = [resolver.system] dialer = dialer.icmp_ttl5_icmp }`,
	} {
		if !strings.Contains(hcl, want) {
			t.Errorf("the pipeline file lacks %s:\n%s", want, res.HCL)
		}
	}
}

// TestPrometheusTargets reads the /probe jobs of a prometheus.yml.
func TestPrometheusTargets(t *testing.T) {
	src := []byte(`scrape_configs:
  - job_name: self
    static_configs: [{targets: ["127.0.0.1:9115"]}]
  - job_name: web
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs:
      - targets: ["https://api.probe.test:8443/health", "http://127.0.0.1:8080"]
  - job_name: sd
    metrics_path: /probe
    params: {module: [tcp_connect]}
    file_sd_configs: [{files: [targets.json]}]
  - job_name: nomodule
    metrics_path: /probe
    static_configs: [{targets: [a]}]
`)
	targets, ns, err := PrometheusTargets("prometheus.yml", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Job: "web", Module: "http_2xx", Target: "https://api.probe.test:8443/health", File: "prometheus.yml", Line: 8},
		{Job: "web", Module: "http_2xx", Target: "http://127.0.0.1:8080", File: "prometheus.yml", Line: 8},
	}
	if diff := cmp.Diff(want, targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if len(ns) != 2 || !strings.Contains(ns[0].String(), "prometheus.yml:9: job sd: finds its targets without static_configs") ||
		!strings.Contains(ns[1].String(), "prometheus.yml:13: job nomodule: probes /probe with 0 modules") {
		t.Errorf("notes:\n%s", notes(ns))
	}
	res, err := Convert("blackbox.yml", []byte("modules:\n  http_2xx:\n    prober: http\n"), targets)
	if err != nil {
		t.Fatal(err)
	}
	hcl := spaces.ReplaceAllString(string(res.HCL), " ")
	for _, want := range []string{
		`handshake "http_2xx_health" { plugin = "http" path = "/health" expect_status = ["2xx"] follow_redirects = true }`,
		`pipeline "http_2xx_health" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.http_2xx_tls, handshake.http_2xx_health] }`,
		`pipeline "http_2xx_http" { resolvers = [resolver.system] dialer = dialer.tcp handshakes = [handshake.http_2xx_http] }`,
		`host = "api.probe.test" port = 8443 pipeline = pipeline.http_2xx_health }`,
		`host = "127.0.0.1" port = 8080 pipeline = pipeline.http_2xx_http }`,
	} {
		if !strings.Contains(hcl, want) {
			t.Errorf("the pipeline file lacks %q:\n%s", want, res.HCL)
		}
	}
}

func TestNotBlackbox(t *testing.T) {
	for _, src := range []string{"", "[1, 2]", "modules: 3", "{{{"} {
		if _, err := Convert("x.yml", []byte(src), nil); err == nil {
			t.Errorf("Convert(%q): no error", src)
		}
	}
}

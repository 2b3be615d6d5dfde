package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
)

// TestImportBlackbox imports a blackbox configuration written from
// blackbox's docs, with the targets of a prometheus.yml, against the lab:
// the notes name file and line, the file validates once its secret is set,
// and every generated pipeline runs against the lab with the result
// blackbox would give (success, or the failure it stands for).
func TestImportBlackbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bb := writeFileIn(t, dir, "blackbox.yml", fmt.Sprintf(`modules:
  https_2xx:
    prober: http
    timeout: 4s
    http:
      method: GET
      valid_status_codes: [200]
      fail_if_not_ssl: true
      fail_if_body_matches_regexp: ["error"]
      tls_config:
        ca_file: %[1]q
        server_name: api.probe.test
      bearer_token: lab-bearer-secret
  tcp_connect:
    prober: tcp
  tls_connect:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        ca_file: %[1]q
        server_name: api.probe.test
  dns_a:
    prober: dns
    dns:
      query_name: api.probe.test
      query_type: A
      transport_protocol: udp
  ping:
    prober: icmp
  grpc_api:
    prober: grpc
    grpc:
      service: api
  ssh_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: "^SSH-2.0-"
        - send: "SSH-2.0-blackbox-ssh-check"
`, testLab.CAFile))
	grpcHealth, err := lab.StartGRPCHealth(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grpcHealth.Close() })
	sshd, err := daemon.StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Close() })
	prom := writeFileIn(t, dir, "prometheus.yml", fmt.Sprintf(`scrape_configs:
  - job_name: web
    metrics_path: /probe
    params: {module: [https_2xx]}
    static_configs:
      - targets: ["https://127.0.0.1:%d/", "https://127.0.0.1:%d/"]
  - job_name: tcp
    metrics_path: /probe
    params: {module: [tcp_connect]}
    static_configs:
      - targets: ["127.0.0.1:%d", "127.0.0.1:%d"]
  - job_name: tls
    metrics_path: /probe
    params: {module: [tls_connect]}
    static_configs:
      - targets: ["127.0.0.1:%d"]
  - job_name: dns
    metrics_path: /probe
    params: {module: [dns_a]}
    static_configs:
      - targets: [%q]
  - job_name: ping
    metrics_path: /probe
    params: {module: [ping]}
    static_configs:
      - targets: ["127.0.0.1"]
  - job_name: grpc
    metrics_path: /probe
    params: {module: [grpc_api]}
    static_configs:
      - targets: [%q]
  - job_name: ssh
    metrics_path: /probe
    params: {module: [ssh_banner]}
    static_configs:
      - targets: [%q]
`, testLab.TLS.Addr.Port(), testLab.Expired.Addr.Port(), testLab.TCP.Addr.Port(), testLab.Refused.Port(),
		testLab.TLS.Addr.Port(), testLab.DNS.Addr, grpcHealth.Addr.String(), sshd.Addr.String()))
	out := filepath.Join(dir, "blackbox.hcl")
	r := probe(t, nil, "import", "blackbox", bb, "--prometheus", prom, "-o", out)
	wantExit(t, r, exitOK)
	for _, want := range []string{
		bb + ":9: module https_2xx: http.fail_if_body_matches_regexp: not expressible",
		bb + ":38: module ssh_banner: tcp.query_response: expressed as an ssh handshake",
		"7 pipelines, 9 targets, 2 notes written to " + out,
		"set the sensitive variable https_2xx_bearer_token: PROBE_VAR_https_2xx_bearer_token=...",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("probe import's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr+r.stdout, "lab-bearer-secret") {
		t.Errorf("the secret is in probe import's output")
	}

	wantExit(t, probe(t, nil, "validate", out), exitUsage) // the secret has no value
	env := []string{"PROBE_VAR_https_2xx_bearer_token=lab-bearer-secret"}
	wantExit(t, probe(t, env, "validate", out), exitOK)
	r = probe(t, env, "run", out, "-o", "json")
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	got := map[string]string{}
	for _, tg := range doc.Targets {
		a := tg.Attempts[0]
		var phases []string
		for _, p := range a.Phases {
			phases = append(phases, p.Phase)
		}
		got[tg.Name] = "ok " + strings.Join(phases, ",")
		if a.Failure != nil {
			got[tg.Name] = a.Failure.Phase + " " + string(a.Failure.Class)
		}
		if tg.Name == testLab.DNS.Addr {
			// The target is the DNS server, asked by the dns-miekg dialer.
			if p := findPhase(a, "dns"); p == nil || p.Attrs["rcode"] != "NOERROR" || p.Attrs["server"] != testLab.DNS.Addr ||
				!strings.Contains(fmt.Sprint(p.Attrs["answer"]), "IN\tA\t127.0.0.1") {
				t.Errorf("the dns module's dns phase: %+v, want an A record of 127.0.0.1 from %s", p, testLab.DNS.Addr)
			}
		}
	}
	want := map[string]string{
		fmt.Sprintf("https://127.0.0.1:%d/", testLab.TLS.Addr.Port()):     "ok resolve,connect,tls,http",
		fmt.Sprintf("https://127.0.0.1:%d/", testLab.Expired.Addr.Port()): "tls tls.cert_expired",
		fmt.Sprintf("127.0.0.1:%d", testLab.TCP.Addr.Port()):              "ok resolve,connect",
		fmt.Sprintf("127.0.0.1:%d", testLab.Refused.Port()):               "connect tcp.refused",
		fmt.Sprintf("127.0.0.1:%d", testLab.TLS.Addr.Port()):              "ok resolve,connect,tls",
		testLab.DNS.Addr:         "ok resolve,dns",
		"127.0.0.1":              "ok resolve,icmp",
		grpcHealth.Addr.String(): "ok resolve,connect,grpc",
		sshd.Addr.String():       "ok resolve,connect,ssh",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results by target:\n got %v\nwant %v", got, want)
	}
}

// writeFileIn writes src to dir/name and returns its path.
func writeFileIn(t *testing.T, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportDebianBlackbox imports the configuration Debian's
// prometheus-blackbox-exporter installs (.ci/deps installs the package)
// and validates the result.
func TestImportDebianBlackbox(t *testing.T) {
	t.Parallel()
	const path = "/etc/prometheus/blackbox.yml"
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("this test needs the Debian package prometheus-blackbox-exporter (see .ci/deps): %v", err)
	}
	out := filepath.Join(t.TempDir(), "blackbox.hcl")
	r := probe(t, nil, "import", "blackbox", path, "-o", out)
	wantExit(t, r, exitOK)
	if want := "10 pipelines, 0 targets, 6 notes written to " + out; !strings.Contains(r.stderr, want) {
		t.Errorf("probe import's stderr lacks %q:\n%s", want, r.stderr)
	}
	r = probe(t, nil, "validate", out)
	wantExit(t, r, exitOK)
	if want := "is valid: 10 pipelines, 0 targets."; !strings.Contains(r.stdout, want) {
		t.Errorf("probe validate: %q, want %q", r.stdout, want)
	}
}

package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestServeWebConfig serves the lab over TLS with basic auth from a web
// configuration file in exporter-toolkit's format: a real Prometheus
// scrapes /probe and /metrics with the password and the CA, an
// unauthenticated scrape gets 401, an ad-hoc target outside the file's
// allow list gets 403 and no connection, and POST /-/reload works with
// --web.enable-lifecycle.
func TestServeWebConfig(t *testing.T) {
	t.Parallel()
	const user, password = "prometheus", "correct horse battery staple"
	file := serveFile(t, "")
	dir := filepath.Dir(file)
	cert, err := testLab.CA.Issue(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string][]byte{
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"web.yml": fmt.Appendf(nil, `tls_server_config:
  cert_file: server.pem
  key_file: server.key
basic_auth_users:
  %s: %s
`, user, hash),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServeWith(t, filepath.Base(file), dir, `exec "$0" "$@" --web.config.file web.yml --web.enable-lifecycle`)
	base := "https://" + srv.addr
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testLab.CA.Pool()}}}
	do := func(method, path, user, pass string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct{ user, pass string }{{"", ""}, {user, "wrong"}, {"nobody", password}} {
		for _, path := range []string{"/metrics", "/probe?target=api"} {
			if status, body := do(http.MethodGet, path, c.user, c.pass); status != http.StatusUnauthorized {
				t.Errorf("GET %s as %q/%q: %d %q, want 401", path, c.user, c.pass, status, body)
			}
		}
	}
	if status, body := do(http.MethodGet, "/probe?target=api", user, password); status != http.StatusOK || !strings.Contains(body, "probe_success 1") {
		t.Errorf("GET /probe?target=api with the password: %d\n%s", status, body)
	}
	outside := startRecorder(t)
	path := fmt.Sprintf("/probe?target=127.0.0.1:%d&pipeline=web", outside.port)
	if status, body := do(http.MethodGet, path, user, password); status != http.StatusForbidden ||
		!strings.Contains(body, "the file allows no ad-hoc target") || strings.Contains(body, dir) {
		t.Errorf("GET %s: %d %q, want 403 without a path", path, status, body)
	}
	if n := len(outside.requests()); n != 0 {
		t.Errorf("the refused ad-hoc target got %d requests, want none", n)
	}
	if status, body := do(http.MethodPost, "/-/reload", user, password); status != http.StatusOK {
		t.Errorf("POST /-/reload with --web.enable-lifecycle: %d %q, want 200", status, body)
	}

	prom := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: probe
    scheme: https
    metrics_path: /probe
    basic_auth: {username: %[1]s, password: %[2]q}
    tls_config: {ca_file: %[3]q}
    static_configs:
      - targets: [api]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - target_label: __address__
        replacement: %[4]s
  - job_name: self
    scheme: https
    basic_auth: {username: %[1]s, password: %[2]q}
    tls_config: {ca_file: %[3]q}
    static_configs:
      - targets: [%[4]q]
  - job_name: anonymous
    scheme: https
    tls_config: {ca_file: %[3]q}
    static_configs:
      - targets: [%[4]q]
`, user, password, testLab.CAFile, srv.addr), nil)
	prom.until(`probe_success{job="probe"}`, "1", func(s []sample) bool { return len(s) == 1 && s[0].value == 1 })
	prom.until(`probe_exporter_adhoc_refused_total{job="self",reason="not_allowed"}`, "1",
		func(s []sample) bool { return len(s) == 1 && s[0].value == 1 })
	prom.until(`up{job="anonymous"}`, "0", func(s []sample) bool { return len(s) == 1 && s[0].value == 0 })
	var targets struct {
		ActiveTargets []struct {
			ScrapePool string
			LastError  string
		}
	}
	if !prom.api("/api/v1/targets?state=active", &targets) {
		t.Fatal("no answer from /api/v1/targets")
	}
	for _, tg := range targets.ActiveTargets {
		if tg.ScrapePool == "anonymous" && !strings.Contains(tg.LastError, "401") {
			t.Errorf("the unauthenticated scrape failed with %q, want a 401", tg.LastError)
		}
	}
}

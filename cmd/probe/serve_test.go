package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a running `probe serve`.
type server struct {
	cmd  *exec.Cmd
	addr string // host:port it listens on
	mu   sync.Mutex
	logs strings.Builder // its stderr
	done chan struct{}   // closed when stderr is drained
}

func (s *server) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

var listeningRE = regexp.MustCompile(`on https?://(\S+) `)

// startServe starts `probe serve file` on a free loopback port and waits
// until it listens. It runs in the file's directory and is given the file's
// base name, as an operator in that directory would type it. It is stopped
// with SIGTERM at the end of the test and must then exit 0.
func startServe(t *testing.T, file string) *server {
	t.Helper()
	return startServeWith(t, filepath.Base(file), filepath.Dir(file))
}

// startServeWith is startServe with the path probe serve is given, in dir,
// and a shell command line that runs it, if any: the shell is given the
// probe binary as $0 and its arguments as $@.
func startServeWith(t *testing.T, path, dir string, shell ...string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	args := []string{probeBin, "serve", path, "--listen", "127.0.0.1:0"}
	if len(shell) > 0 {
		args = append([]string{"sh", "-c", strings.Join(shell, " ")}, args...)
	}
	s := &server{cmd: exec.CommandContext(ctx, args[0], args[1:]...), done: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		defer cancel()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop probe serve: %v", err)
		}
		<-s.done
		if err := s.cmd.Wait(); err != nil {
			t.Errorf("probe serve exited with %v after SIGTERM, want 0; stderr:\n%s", err, s.stderr())
		} else if t.Failed() {
			t.Logf("probe serve stderr:\n%s", s.stderr())
		}
	})
	select {
	case s.addr = <-listening:
	case <-s.done:
		t.Fatalf("probe serve exited before listening; stderr:\n%s", s.stderr())
	case <-time.After(20 * time.Second):
		t.Fatalf("probe serve not listening after 20s; stderr:\n%s", s.stderr())
	}
	return s
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// freePort returns a loopback port nothing listens on (for programs that
// cannot listen on port 0 and say where they went).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveFile is a pipeline file for `probe serve` against the lab: api and
// broken[expired] over HTTPS (tls, then http), probed every 500ms too.
func serveFile(t *testing.T, extra string) string {
	t.Helper()
	return writeFile(t, "serve.hcl", labHeader("1s")+fmt.Sprintf(`
handshake "http" { plugin = "http" }

pipeline "web" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.http]
}

schedule { every = "500ms" }

target "api" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.web
}

target "broken" {
  for_each = { expired = %d }
  host     = "expired.probe.test"
  port     = each.value
  pipeline = pipeline.web
}
`, testLab.TLS.Addr.Port(), testLab.Expired.Addr.Port())+extra)
}

// TestServePrometheus runs a real Prometheus server (Debian's package)
// against `probe serve` in the multi-target exporter pattern and asks its
// API what it scraped.
func TestServePrometheus(t *testing.T) {
	t.Parallel()
	srv := startServe(t, serveFile(t, ""))
	relabel := fmt.Sprintf(`
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %s`, srv.addr)
	adhoc := net.JoinHostPort("api.probe.test", strconv.Itoa(int(testLab.TLS.Addr.Port())))
	prom := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: probe
    metrics_path: /probe
    static_configs:
      - targets: [api, "broken[expired]"]%[1]s
  - job_name: adhoc
    metrics_path: /probe
    params:
      pipeline: [web]
    static_configs:
      - targets: [%[2]q]%[1]s
  - job_name: self
    static_configs:
      - targets: [%[3]q]
`, relabel, adhoc, srv.addr), nil)

	success := map[string]float64{}
	for _, s := range prom.eventually(`probe_success{job=~"probe|adhoc"}`, 3) {
		success[s.labels["instance"]] = s.value
	}
	if want := map[string]float64{"api": 1, "broken[expired]": 0, adhoc: 1}; fmt.Sprint(success) != fmt.Sprint(want) {
		t.Errorf("probe_success by instance = %v, want %v", success, want)
	}

	phases := map[string]float64{}
	for _, s := range prom.eventually(`probe_phase_duration_seconds{instance="api"}`, 4) {
		phases[s.labels["phase"]] = s.value
		if _, ok := s.labels["target"]; ok {
			t.Errorf("%v: /probe metrics carry no target label, the scrape names it", s.labels)
		}
	}
	var sum float64
	for _, phase := range []string{"resolve", "connect", "tls", "http"} {
		d := phases[phase]
		if d <= 0 || d > 1 {
			t.Errorf("probe_phase_duration_seconds{phase=%q} = %v, want a measured duration under the 1s timeout", phase, d)
		}
		sum += d
	}
	total := prom.eventually(`probe_duration_seconds{instance="api"}`, 1)[0].value
	if total < sum || total > sum+0.01 {
		t.Errorf("probe_duration_seconds %v, phases sum to %v: the phases must add up to the total", total, sum)
	}

	failure := prom.eventually(`probe_failure{instance="broken[expired]"}`, 1)[0]
	if failure.labels["phase"] != "tls" || failure.labels["class"] != "tls.cert_expired" || failure.value != 1 {
		t.Errorf("probe_failure of broken[expired] = %v", failure)
	}
	notAfter := prom.eventually(`probe_tls_cert_not_after_seconds{instance="api"}`, 1)[0].value
	if until := time.Until(time.Unix(int64(notAfter), 0)); until < 22*time.Hour || until > 25*time.Hour {
		t.Errorf("probe_tls_cert_not_after_seconds is %v from now, want the lab's 24h", until)
	}
	if code := prom.eventually(`probe_http_status_code{instance="api"}`, 1)[0].value; code != 200 {
		t.Errorf("probe_http_status_code = %v, want 200", code)
	}

	// The scheduled probing, scraped from /metrics.
	counts := prom.eventually(`probe_attempt_phase_duration_seconds_count{job="self",target="api"}`, 4)
	for _, s := range counts {
		if s.value < 1 {
			t.Errorf("%v: %v scheduled samples, want some", s.labels, s.value)
		}
	}
	if s := prom.eventually(`probe_attempt_failures_total{job="self",target="broken[expired]",class="tls.cert_expired"}`, 1); s[0].value < 1 {
		t.Errorf("scheduled failures of broken[expired]: %v", s)
	}
	prom.until(`probe_exporter_probes_total{job="self",trigger="scrape",result="success"}`, "2 or more",
		func(s []sample) bool { return len(s) == 1 && s[0].value >= 2 })
	prom.eventually(`go_goroutines{job="self"}`, 1)
}

// TestServeNativeHistograms has a real Prometheus with native histograms
// on scrape the schedule's histograms from /metrics, in the protobuf format
// it asks for then, and checks what it read: as many TLS phases in the
// histogram as attempts counted, in the same scrape, and their median
// within the lab's timeout.
func TestServeNativeHistograms(t *testing.T) {
	t.Parallel()
	srv := startServe(t, serveFile(t, ""))
	prom := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: [%q]
`, srv.addr), nil, "--enable-feature=native-histograms")

	tls := `probe_attempt_phase_duration_seconds{job="self",target="api",phase="tls"}`
	prom.until("histogram_count("+tls+")", "3 or more", func(s []sample) bool { return len(s) == 1 && s[0].value >= 3 })
	if s := prom.query(`probe_attempts_total{job="self",target="api"} - on(target) histogram_count(` + tls + ")"); len(s) != 1 || s[0].value != 0 {
		t.Errorf("attempts of api less the TLS phases in its histogram = %v, want 0: every attempt of api succeeds", s)
	}
	if s := prom.query("histogram_quantile(0.5, " + tls + ")"); len(s) != 1 || s[0].value <= 0 || s[0].value > 1 {
		t.Errorf("the median TLS phase of api = %v, want a measured duration under the 1s timeout", s)
	}
	if s := prom.query(`probe_attempt_phase_duration_seconds_count{job="self"}`); len(s) != 0 {
		t.Errorf("classic series %v: Prometheus did not read the histograms as native", s)
	}
	failures := prom.query(`probe_attempt_failures_total{job="self",target="broken[expired]",phase="tls",class="tls.cert_expired"}`)
	if len(failures) != 1 || failures[0].value < 1 {
		t.Errorf("scheduled failures of broken[expired] = %v, want 1 or more", failures)
	}
}

// TestServeReload reloads the file on SIGHUP: a new target is served, a
// broken file is reported and the last good one kept.
func TestServeReload(t *testing.T) {
	t.Parallel()
	file := serveFile(t, "")
	srv := startServeWith(t, filepath.Base(file), filepath.Dir(file), `exec "$0" "$@" --web.enable-lifecycle`)
	base := "http://" + srv.addr
	if status, body := get(t, base+"/probe?target=fresh"); status != http.StatusBadRequest || !strings.Contains(body, `no target named "fresh"`) {
		t.Fatalf("before reload: %d %s", status, body)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fresh := fmt.Sprintf(`
target "fresh" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port())
	reload := func(src string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	reload(string(src) + fresh)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := get(t, base+"/probe?target=fresh")
		if status == http.StatusOK {
			if !strings.Contains(body, "probe_success 1") || !strings.Contains(body, `probe_phase_duration_seconds{phase="tls"}`) {
				t.Errorf("fresh after reload:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fresh not served 10s after SIGHUP: %d %s\nstderr:\n%s", status, body, srv.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}

	reload(string(src) + fresh + `target "half" {`)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.stderr(), "reload failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload failure logged 10s after SIGHUP with a broken file; stderr:\n%s", srv.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(srv.stderr(), "Error: Unclosed configuration block") {
		t.Errorf("the broken file's diagnostics are not on stderr:\n%s", srv.stderr())
	}
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The diagnostics, with the file named as probe serve was given it
	// and no path of the server's.
	for _, want := range []string{"reload failed: serve.hcl did not load:", "Error: Unclosed configuration block", "on serve.hcl line "} {
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(answer), want) {
			t.Errorf("POST /-/reload of a broken file: %d %s\nwant 500 with %q", resp.StatusCode, answer, want)
		}
	}
	if dir := filepath.Dir(file); strings.Contains(string(answer), dir) {
		t.Errorf("POST /-/reload answers the server's path %s:\n%s", dir, answer)
	}
	if status, body := get(t, base+"/probe?target=fresh"); status != http.StatusOK || !strings.Contains(body, "probe_success 1") {
		t.Errorf("after a failed reload: %d %s; want the last good file served", status, body)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "probe_exporter_config_last_reload_successful 0") {
		t.Errorf("/metrics does not say the last reload failed:\n%s", body)
	}
}

// recorder is a loopback HTTP server that records the headers of every
// request it gets.
type recorder struct {
	port    int
	mu      sync.Mutex
	headers []http.Header
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.headers = append(r.headers, req.Header.Clone())
	}))
	t.Cleanup(srv.Close)
	r.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return r
}

// requests returns the headers of the requests so far.
func (r *recorder) requests() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.headers)
}

// TestServeSensitiveAdHoc: a pipeline whose HTTP handshake sends a
// sensitive variable in a header probes the file's own target, header
// included, but the ad-hoc form does not take it to a listener a caller
// names: the request is refused and that listener sees nothing, while a
// pipeline without a secret does reach it.
func TestServeSensitiveAdHoc(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-serve-secret"
	named, adhoc := startRecorder(t), startRecorder(t)
	srv := startServe(t, writeFile(t, "secret.hcl", fmt.Sprintf(`
variable "token" {
  sensitive = true
  default   = %q
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "auth" {
  plugin  = "http"
  headers = { Authorization = "Bearer ${var.token}" }
}
handshake "plain" { plugin = "http" }

pipeline "auth" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.auth]
}
pipeline "plain" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.plain]
}

target "named" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.auth
}

serve {
  adhoc { allow = ["127.0.0.1:*"] }
}
`, secret, named.port)))
	base := "http://" + srv.addr
	bearer := "Bearer " + secret

	status, body := get(t, fmt.Sprintf("%s/probe?target=127.0.0.1:%d&pipeline=auth", base, adhoc.port))
	if want := `pipeline "auth" holds a sensitive value (handshake.auth)`; status != http.StatusForbidden || !strings.Contains(body, want) {
		t.Errorf("ad-hoc probe with the secret's pipeline: %d %q, want 403 with %q", status, body, want)
	}
	if n := len(adhoc.requests()); n != 0 {
		t.Errorf("the ad-hoc listener got %d requests from a refused probe, want none", n)
	}
	if _, body := get(t, fmt.Sprintf("%s/probe?target=127.0.0.1:%d&pipeline=plain", base, adhoc.port)); !strings.Contains(body, "probe_success 1") {
		t.Errorf("ad-hoc probe without a secret:\n%s", body)
	}
	for _, path := range []string{"/probe?target=named", fmt.Sprintf("/probe?target=127.0.0.1:%d&pipeline=auth", named.port)} {
		if _, body := get(t, base+path); !strings.Contains(body, "probe_success 1") {
			t.Errorf("GET %s, the file's target:\n%s", path, body)
		}
	}

	if got := adhoc.requests(); len(got) != 1 || got[0].Get("Authorization") != "" {
		t.Errorf("the ad-hoc listener got %v, want only the request of pipeline plain, without Authorization", got)
	}
	for _, h := range adhoc.requests() {
		for name, values := range h {
			if strings.Contains(strings.Join(values, " "), secret) {
				t.Errorf("the ad-hoc listener got the secret in %s", name)
			}
		}
	}
	got := named.requests()
	if len(got) != 2 {
		t.Errorf("the file's target got %d requests, want 2", len(got))
	}
	for _, h := range got {
		if h.Get("Authorization") != bearer {
			t.Errorf("the file's target got Authorization %q, want the configured bearer token", h.Get("Authorization"))
		}
	}
	if strings.Contains(srv.stderr(), secret) {
		t.Errorf("probe serve logged the secret:\n%s", srv.stderr())
	}
}

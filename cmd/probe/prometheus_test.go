package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promServer is a running Prometheus server (Debian's package).
type promServer struct {
	t      *testing.T
	addr   string       // host:port of its web API
	client *http.Client // reaches addr
}

type sample struct {
	labels map[string]string
	value  float64
}

// startPrometheus runs Prometheus on a free loopback port with config as
// its prometheus.yml and files (a rule file, say) beside it. It is stopped
// at the end of the test, and its log shown if the test failed.
func startPrometheus(t *testing.T, config string, files map[string]string, flags ...string) *promServer {
	t.Helper()
	return startPrometheusWith(t, config, files, fmt.Sprintf("127.0.0.1:%d", freePort(t)), (*exec.Cmd).Start, http.DefaultClient, flags...)
}

// startPrometheusWith is startPrometheus listening on addr, started by
// start (in a network namespace, say) and asked through client. The names
// of files may have a directory; flags are Prometheus's own, more of them.
func startPrometheusWith(t *testing.T, config string, files map[string]string, addr string,
	start func(*exec.Cmd) error, client *http.Client, flags ...string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("this test needs Prometheus: %v (install the Debian package prometheus; make test does, see .ci/deps)", err)
	}
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("prometheus.yml", config)
	for name, src := range files {
		write(name, src)
	}
	p := &promServer{t: t, addr: addr, client: client}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + p.addr, "--log.level=warn"}, flags...)...)
	cmd.Dir = dir // rule_files are relative to it
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", out)
		}
	})
	return p
}

// api decodes the data of the answer of the API at path (/api/v1/...) into
// data; false while Prometheus is not up or does not answer success.
func (p *promServer) api(path string, data any) bool {
	resp, err := p.client.Get("http://" + p.addr + path)
	if err != nil {
		return false // not up yet
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		return false
	}
	return json.Unmarshal(out.Data, data) == nil
}

// query asks Prometheus for the instant vector of q.
func (p *promServer) query(q string) []sample {
	var data struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
	if !p.api("/api/v1/query?query="+url.QueryEscape(q), &data) {
		return nil
	}
	var samples []sample
	for _, r := range data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
		samples = append(samples, sample{r.Metric, v})
	}
	return samples
}

// until waits until the samples of q satisfy ok.
func (p *promServer) until(q, want string, ok func([]sample) bool) []sample {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		s := p.query(q)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("Prometheus has %v for %s after 45s, want %s", s, q, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// eventually waits until q has want samples or more.
func (p *promServer) eventually(q string, want int) []sample {
	p.t.Helper()
	return p.until(q, fmt.Sprintf("%d samples", want), func(s []sample) bool { return len(s) >= want })
}

// yamlBlock returns the one ```yaml block of doc that contains marker.
func yamlBlock(t *testing.T, doc []byte, marker string) string {
	t.Helper()
	var found []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		if strings.Contains(string(m[1]), marker) {
			found = append(found, string(m[1]))
		}
	}
	if len(found) != 1 {
		t.Fatalf("the doc has %d yaml blocks with %q, want 1", len(found), marker)
	}
	return found[0]
}

// TestServePrometheusAlerts runs Prometheus with the configuration and the
// alerting rule of docs/prometheus.md, as written there but for the targets
// and the address, against `probe serve` of a scheduled file with one
// healthy target and two failing ones. /probe and the schedule's /metrics
// both report each target: every failing target must still alert once, and
// the healthy ones not at all.
func TestServePrometheusAlerts(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "prometheus.md"))
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "serve.hcl", labHeader("1s")+fmt.Sprintf(`
schedule { every = "500ms" }

target "api" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}

target "broken" {
  for_each = { expired = %d, refused = %d }
  host     = "expired.probe.test"
  port     = each.value
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port(), testLab.Expired.Addr.Port(), testLab.Refused.Port()))
	srv := startServe(t, file)

	config := yamlBlock(t, doc, "scrape_configs:")
	adhoc := net.JoinHostPort("api.probe.test", strconv.Itoa(int(testLab.TLS.Addr.Port())))
	for _, r := range [][2]string{
		{`[api, "broken[expired]"]`, `[api, "broken[expired]", "broken[refused]"]`},
		{`[example.com:443, example.org:443]`, fmt.Sprintf("[%q]", adhoc)}, // loopback only
		{"127.0.0.1:9115", srv.addr},
	} {
		if !strings.Contains(config, r[0]) {
			t.Fatalf("docs/prometheus.md's configuration no longer has %s; update this test:\n%s", r[0], config)
		}
		config = strings.ReplaceAll(config, r[0], r[1])
	}
	prom := startPrometheus(t, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
`+config, map[string]string{"rules.yml": yamlBlock(t, doc, "groups:")})

	// Every job scraped, the schedule's series included.
	prom.eventually(`probe_success{job="probe"}`, 3)
	prom.eventually(`probe_success{job="probe-adhoc"}`, 1)
	prom.eventually(`probe_attempts_total{job="probe-self"}`, 3)
	scraped := time.Now()
	scheduled := map[string]float64{}
	for _, s := range prom.query(`probe_scheduled_success{job="probe-self"}`) {
		scheduled[s.labels["target"]] = s.value
	}
	if want := map[string]float64{"api": 1, "broken[expired]": 0, "broken[refused]": 0}; fmt.Sprint(scheduled) != fmt.Sprint(want) {
		t.Errorf("probe_scheduled_success by target = %v, want %v", scheduled, want)
	}

	// An evaluation of the rules that started a whole interval after those
	// scrapes had them all.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rules struct {
			Groups []struct{ LastEvaluation time.Time }
		}
		if prom.api("/api/v1/rules", &rules) && len(rules.Groups) == 1 && rules.Groups[0].LastEvaluation.After(scraped.Add(time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rule evaluation 30s after the scrapes: %+v", rules)
		}
		time.Sleep(250 * time.Millisecond)
	}
	var alerts struct {
		Alerts []struct {
			Labels map[string]string
			State  string
		}
	}
	if !prom.api("/api/v1/alerts", &alerts) {
		t.Fatal("Prometheus did not answer /api/v1/alerts")
	}
	// A target is its target label on /metrics, its instance under /probe.
	perTarget := map[string]int{}
	for _, a := range alerts.Alerts {
		target := a.Labels["target"]
		if target == "" {
			target = a.Labels["instance"]
		}
		perTarget[target]++
		t.Logf("%s alert %v", a.State, a.Labels)
	}
	if want := map[string]int{"broken[expired]": 1, "broken[refused]": 1}; fmt.Sprint(perTarget) != fmt.Sprint(want) {
		t.Errorf("alerts per target = %v, want %v: one per failing target, none for api and %s", perTarget, want, adhoc)
	}
}

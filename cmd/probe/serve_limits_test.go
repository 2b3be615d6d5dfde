package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// metricValue returns the value of the sample of name (with its labels, if
// any, as written) in an exposition, and whether there is one.
func metricValue(body, name string) (float64, bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestServeFDLimit runs probe serve under `ulimit -n 128` and scrapes a
// healthy loopback target 150 times at once, twice, after parking 100 idle
// connections on it. The machine's limits are never the target's failure:
// no answer is probe_success 0 (it used to be, with local.fd_limit). A
// scrape with time to wait for a probe slot is probed; one without
// (Prometheus's timeout no longer than the file's) is answered 503 and
// counted in probe_exporter_scrapes_shed_total. The server holds fewer
// descriptors than the limit all along.
func TestServeFDLimit(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "fds.hcl", fmt.Sprintf(`
run { timeout = "2s" }

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}

target "api" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.tcp
}
`, testLab.TCP.Addr.Port()))
	srv := startServeWith(t, filepath.Base(file), filepath.Dir(file), `ulimit -n 128 && exec "$0" "$@"`)
	base := "http://" + srv.addr
	_, body := get(t, base+"/metrics")
	if v, _ := metricValue(body, "process_max_fds"); v != 128 {
		t.Fatalf("process_max_fds %v, want the 128 of ulimit -n", v)
	}
	conns, _ := metricValue(body, "probe_exporter_connections_max")
	probes, _ := metricValue(body, "probe_exporter_probes_max")
	t.Logf("under 128 descriptors: %v connections, %v probes at once", conns, probes)
	if probes < 1 || conns < probes || conns+4*probes > 128-64 {
		t.Errorf("%v connections and %v probes at once do not fit in 128 descriptors with 64 kept", conns, probes)
	}

	// A client that parks idle keep-alive connections.
	for range 100 {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /probe?target=api HTTP/1.1\r\nHost: probe\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	defer client.CloseIdleConnections()
	wave := func(timeout string) (ok, shed int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 150 {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/probe?target=api", nil)
				req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("scrape with timeout %s: %v", timeout, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("scrape with timeout %s: %v", timeout, err)
				case resp.StatusCode == http.StatusOK && strings.Contains(string(body), "probe_success 1\n"):
					ok++
				case resp.StatusCode == http.StatusServiceUnavailable:
					shed++
				default:
					t.Errorf("scrape with timeout %s: %d\n%s", timeout, resp.StatusCode, body)
				}
			})
		}
		wg.Wait()
		return ok, shed
	}
	// Prometheus's default 10s leave 7.5s to wait beside the file's 2s.
	if ok, shed := wave("10"); ok != 150 {
		t.Errorf("150 scrapes with time to wait: %d probed, %d shed; want all probed", ok, shed)
	}
	// 1s leaves no time to wait: what finds no slot is shed.
	ok, shed := wave("1")
	t.Logf("150 scrapes with no time to wait: %d probed, %d shed", ok, shed)
	if ok+shed != 150 || ok < int(probes) {
		t.Errorf("150 scrapes with no time to wait: %d probed, %d shed; want at least %v probed and the rest shed", ok, shed, probes)
	}
	_, body = get(t, base+"/metrics")
	// A keep-alive connection the server closes at its cap as the client
	// sends a request on it may have had that request served: the client
	// sends it again, and the first answer, maybe a 503, is counted.
	counted, _ := metricValue(body, "probe_exporter_scrapes_shed_total")
	closed, _ := metricValue(body, "probe_exporter_connections_closed_total")
	if counted < float64(shed) || counted > float64(shed)+closed {
		t.Errorf("probe_exporter_scrapes_shed_total %v, want the %d answered 503 and at most the %v closed connections more", counted, shed, closed)
	}
	if v, _ := metricValue(body, `probe_exporter_probes_total{result="failure",trigger="scrape"}`); v != 0 {
		t.Errorf("%v scrapes failed, want none", v)
	}
	if v, ok := metricValue(body, "process_open_fds"); !ok || v >= 128 {
		t.Errorf("process_open_fds %v, want under the limit", v)
	}
	if strings.Contains(srv.stderr(), "too many open files") {
		t.Errorf("probe serve ran out of descriptors:\n%s", srv.stderr())
	}
}

// TestServeAnswersNameNoPath: probe serve given the file's absolute path
// answers errors, its index and a failed reload without the file's
// directory: the server's paths are its business.
func TestServeAnswersNameNoPath(t *testing.T) {
	t.Parallel()
	file := serveFile(t, "")
	dir := filepath.Dir(file)
	srv := startServeWith(t, file, t.TempDir(), `exec "$0" "$@" --web.enable-lifecycle`)
	base := "http://" + srv.addr
	answers := map[string]string{}
	for _, path := range []string{"/", "/api/v1/targets", "/probe?target=nope", "/probe?target=127.0.0.1:1&pipeline=nope"} {
		status, body := get(t, base+path)
		answers[fmt.Sprintf("GET %s: %d", path, status)] = body
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, append(src, `target "half" {`...), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	answers[fmt.Sprintf("POST /-/reload: %d", resp.StatusCode)] = string(body)
	for req, want := range map[string]string{
		"GET /: 200":                                       "<!doctype html>", // the file has a schedule: the status page
		"GET /api/v1/targets: 200":                         `"targets":[`,
		"GET /probe?target=nope: 400":                      `no target named "nope"; for another host`,
		"GET /probe?target=127.0.0.1:1&pipeline=nope: 400": `no pipeline named "nope" (pipelines: `,
		"POST /-/reload: 500":                              "reload failed: serve.hcl did not load:",
	} {
		if body, ok := answers[req]; !ok || !strings.Contains(body, want) {
			t.Errorf("%s: %q, want %q; answers: %v", req, body, want, answers)
		}
	}
	for req, body := range answers {
		if strings.Contains(body, dir) {
			t.Errorf("%s names the server's directory %s:\n%s", req, dir, body)
		}
	}
	if !strings.Contains(answers["POST /-/reload: 500"], "on serve.hcl line ") {
		t.Errorf("the failed reload's answer lacks its diagnostic:\n%s", answers["POST /-/reload: 500"])
	}
}

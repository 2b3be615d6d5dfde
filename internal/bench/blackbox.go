//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/netlab"
)

// blackboxBin is the Debian package's binary (prometheus-blackbox-exporter).
const blackboxBin = "/usr/bin/prometheus-blackbox-exporter"

// blackboxConfig holds the modules the benchmarks use: tcp_tls (tcp prober
// with TLS) and http, IPv4 only, trusting the CA in %[1]q, with server name
// %[2]q for tcp_tls ("" means the target's host).
const blackboxConfig = `modules:
  tcp_tls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls: true
      tls_config:
        ca_file: %[1]q
        server_name: %[2]q
  http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        ca_file: %[1]q
`

// blackbox is a running blackbox_exporter.
type blackbox struct {
	cmd    *exec.Cmd
	base   string // "http://127.0.0.1:port"
	client *http.Client
	dir    string
	stderr strings.Builder
}

// startBlackbox starts blackbox_exporter with the benchmark modules, in ns
// when it is not nil (at a real-time priority when realTime is set), with
// resolvConf as its /etc/resolv.conf when not "". It returns once the
// exporter answers.
func startBlackbox(ns *netlab.Namespace, realTime bool, resolvConf, caFile, serverName string) (b *blackbox, err error) {
	b = &blackbox{client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start blackbox_exporter: %w", err), b.close())
			b = nil
		}
	}()
	if b.dir, err = os.MkdirTemp("", "probe-bench-blackbox-"); err != nil {
		return b, err
	}
	conf := filepath.Join(b.dir, "blackbox.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, blackboxConfig, caFile, serverName), 0o644); err != nil {
		return b, err
	}
	listen := "127.0.0.1:9115" // the namespace's own loopback
	if ns == nil {
		free, err := lab.FreeAddr()
		if err != nil {
			return b, err
		}
		listen = free.String()
	} else {
		tr := b.client.Transport.(*http.Transport)
		tr.DialContext = ns.DialContext
	}
	b.base = "http://" + listen
	b.cmd = exec.Command(blackboxBin, "--config.file="+conf, "--web.listen-address="+listen, "--log.level=error")
	b.cmd.Stderr = &b.stderr
	if resolvConf != "" {
		netlab.WithResolvConf(b.cmd, resolvConf)
	}
	switch {
	case ns != nil && realTime:
		err = ns.StartRealTime(b.cmd) // it measures
	case ns != nil:
		err = ns.Start(b.cmd)
	default:
		err = b.cmd.Start()
	}
	if err != nil {
		b.cmd = nil
		return b, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := b.client.Get(b.base + "/metrics")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return b, nil
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("not answering on %s: %w; stderr: %s", listen, err, &b.stderr)
		}
	}
}

// probe runs one probe of module against target and returns the metrics
// the exporter reports, by name with labels as printed
// (`probe_http_duration_seconds{phase="tls"}`).
func (b *blackbox) probe(ctx context.Context, module, target string) (map[string]float64, error) {
	u := b.base + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: every sample line, by its
// name and labels.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: malformed line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// close stops the exporter and removes its files.
func (b *blackbox) close() error {
	var errs []error
	if b.cmd != nil {
		b.cmd.Process.Kill()
		if err := b.cmd.Wait(); err != nil && !isKilled(err) {
			errs = append(errs, fmt.Errorf("blackbox_exporter: %w; stderr: %s", err, &b.stderr))
		}
	}
	b.client.CloseIdleConnections()
	if b.dir != "" {
		errs = append(errs, os.RemoveAll(b.dir))
	}
	return errors.Join(errs...)
}

// isKilled reports whether err is the exit of a process we killed.
func isKilled(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}

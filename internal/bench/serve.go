//go:build linux

package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/probe-dev/probe/internal/lab"
)

// serveHCL is the pipeline file of the service run: every target a name of
// its own under probe.test, which the lab's DNS server answers by its
// wildcard, on the port of one of the lab's TLS servers; resolve (A),
// connect, TLS verified against the lab's CA, every %[1]s. %[4]s maps the
// names to their ports.
const serveHCL = `
run {
  timeout = "5s"
}

schedule {
  every = %[1]q
}

resolver "lab" {
  plugin      = "dns-miekg"
  servers     = [%[2]q]
  query_types = ["A"]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin  = "tls"
  ca_file = %[3]q
}

pipeline "https" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "t" {
  for_each = %[4]s
  host     = "${each.key}.probe.test"
  port     = each.value
  pipeline = pipeline.https
}
`

// servePrometheusConfig scrapes blackbox_exporter's /probe with its tcp_tls
// module for every target, every %[1]s, as blackbox_exporter's users do;
// %[3]s lists the targets, %[4]s is the exporter's address.
const servePrometheusConfig = `global:
  scrape_interval: %[1]s
  scrape_timeout: %[2]s
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [tcp_tls]
    static_configs:
      - targets: [%[3]s]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %[4]s
`

// serveOptions size a service run.
type serveOptions struct {
	Targets  int           // TLS targets, names under the lab's wildcard
	Servers  int           // the lab's TLS servers they share
	Every    time.Duration // the schedule's interval, and Prometheus's
	Warmup   time.Duration // before the measured window
	Duration time.Duration // the measured window
	Probe    string        // the probe binary
	Log      io.Writer     // progress; nil for none
}

// serveResult is what a service run measured of each contender over the
// window.
type serveResult struct {
	Probe, Blackbox serveUsage
	// LatenessP99 is the 99th percentile of probe_schedule_lateness_seconds
	// over the window, interpolated in its bucket as histogram_quantile does.
	LatenessP99 time.Duration
	// MetricsSeries and MetricsBytes are the samples and the size of the
	// last scrape of probe's /metrics (the text format).
	MetricsSeries, MetricsBytes int
}

// serveUsage is one contender's cost over the window.
type serveUsage struct {
	CPU      time.Duration // user and system time of its processes
	Attempts int           // attempts made (for blackbox_exporter, scrapes of /probe)
	OK       int           // of which succeeded
	RSSDrift float64       // MB: the probe process's resident set at the window's end less at its start
	// HeapDrift is the same of its live heap (go_gc_heap_live_bytes): what
	// it holds, without the garbage collector's slack and the peaks of a
	// scrape, which the resident set also counts.
	HeapDrift float64
	// PhaseMeans is, for probe, the mean of each phase that succeeded over
	// the window (from its histograms' sums and counts): on a machine too
	// busy for the schedule, the attempts wait to start (lateness) or, run
	// alongside, in their phases.
	PhaseMeans map[string]time.Duration
	// Busy is the share of the machine's CPU time that was busy over the
	// window, every process's (the lab's servers too): near 1, the attempts
	// queue for the CPU, and lateness says more of the machine than of the
	// schedule.
	Busy float64
}

// perK returns the CPU seconds per 1,000 attempts that succeeded: a failed
// one (a timeout of an overloaded machine) costs less and measures nothing,
// so a contender that fails more would otherwise look cheaper.
func (u serveUsage) perK() float64 {
	if u.OK == 0 {
		return math.NaN()
	}
	return u.CPU.Seconds() * 1000 / float64(u.OK)
}

// measureServe runs `probe serve` on Targets TLS targets every Every, then
// blackbox_exporter scraped by Prometheus on the same targets at the same
// interval, one after the other against the same lab, and measures each
// over Duration after Warmup.
func measureServe(ctx context.Context, o serveOptions) (res serveResult, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	cert, err := l.CA.Issue([]string{"*.probe.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		return res, err
	}
	ports := make([]uint16, o.Servers)
	for i := range ports {
		s, err := lab.StartTLS(lab.TLSOptions{Cert: cert})
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, s.Close()) }()
		ports[i] = s.Addr.Port()
	}
	// The system resolver, blackbox_exporter's, asks port 53: the DNS server
	// listens there on a loopback address of its own, which no other
	// program of the machine uses.
	dnsAddr := netip.AddrFrom4([4]byte{127, byte(100 + rand.IntN(100)), byte(rand.IntN(256)), byte(1 + rand.IntN(254))})
	dnsServer, err := lab.StartDNSOn(netip.AddrPortFrom(dnsAddr, 53), "probe.test.")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, dnsServer.Close()) }()
	dnsServer.AddAddr("*", netip.MustParseAddr("127.0.0.1"))

	dir, err := os.MkdirTemp("", "probe-bench-serve-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var byName, list strings.Builder
	byName.WriteString("{\n")
	for i := range o.Targets {
		name, port := fmt.Sprintf("t%05d", i), ports[i%len(ports)]
		fmt.Fprintf(&byName, "    %s = %d\n", name, port)
		if i > 0 {
			list.WriteString(", ")
		}
		fmt.Fprintf(&list, "'%s.probe.test:%d'", name, port)
	}
	byName.WriteString("  }")

	fmt.Fprintf(o.Log, "serve: probe serve, %d targets every %v\n", o.Targets, o.Every)
	if res.Probe, res.LatenessP99, res.MetricsSeries, res.MetricsBytes, err = serveProbe(ctx, o, dir, l.CAFile,
		netip.AddrPortFrom(dnsAddr, 53).String(), byName.String()); err != nil {
		return res, fmt.Errorf("probe serve: %w", err)
	}
	fmt.Fprintf(o.Log, "serve: blackbox_exporter and Prometheus, %d targets every %v\n", o.Targets, o.Every)
	resolvConf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+dnsAddr.String()+"\noptions attempts:1 timeout:2\n"), 0o644); err != nil {
		return res, err
	}
	if res.Blackbox, err = serveBlackbox(ctx, o, dir, l.CAFile, resolvConf, list.String()); err != nil {
		return res, fmt.Errorf("blackbox_exporter and Prometheus: %w", err)
	}
	return res, nil
}

// serveProbe runs probe serve on the targets and measures it; the bench
// scrapes its /metrics every interval, as Prometheus would.
func serveProbe(ctx context.Context, o serveOptions, dir, caFile, dnsServer, targets string) (u serveUsage, late time.Duration, series, size int, err error) {
	file := filepath.Join(dir, "serve.hcl")
	if err := os.WriteFile(file, fmt.Appendf(nil, serveHCL, o.Every.String(), dnsServer, caFile, targets), 0o644); err != nil {
		return u, 0, 0, 0, err
	}
	listen, err := lab.FreeAddr()
	if err != nil {
		return u, 0, 0, 0, err
	}
	cmd := exec.Command(o.Probe, "serve", file, "--listen", listen.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return u, 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Kill()
		if werr := cmd.Wait(); werr != nil && !isKilled(werr) {
			err = errors.Join(err, fmt.Errorf("%w; stderr: %s", werr, lastLines(stderr.String(), 10)))
		}
	}()
	metricsURL := "http://" + listen.String() + "/metrics"
	client := &http.Client{Timeout: o.Every}
	keep := []string{"probe_exporter_probes_total{", "probe_schedule_lateness_seconds_bucket{", "go_gc_heap_live_bytes",
		"probe_attempt_phase_duration_seconds_sum{", "probe_attempt_phase_duration_seconds_count{"}
	scrape := func() (map[string]float64, int, int, error) { return scrapeMetrics(ctx, client, metricsURL, keep) }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, _, err := scrape(); err == nil {
			break
		} else if time.Now().After(deadline) {
			return u, 0, 0, 0, fmt.Errorf("not answering on %s: %w; stderr: %s", listen, err, lastLines(stderr.String(), 10))
		}
	}
	pid := cmd.Process.Pid
	var before, after map[string]float64
	var cpu0 time.Duration
	var machine0 machineCPU
	var rss, heap []float64 // MB, sampled each interval of the window
	var windowStart time.Time
	start := time.Now()
	for tick := 1; ; tick++ {
		if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(tick)*o.Every))); err != nil {
			return u, 0, 0, 0, err
		}
		m, n, b, err := scrape()
		if err != nil {
			return u, 0, 0, 0, err
		}
		// The warm-up lasts Warmup and two rounds of every target, so that
		// every target has its series and its history; at most ten
		// intervals more.
		elapsed := time.Since(start)
		if before == nil {
			probed := m[`probe_exporter_probes_total{result="success",trigger="schedule"}`] +
				m[`probe_exporter_probes_total{result="failure",trigger="schedule"}`]
			if elapsed < o.Warmup || probed < float64(2*o.Targets) && elapsed < o.Warmup+10*o.Every {
				continue
			}
			if probed < float64(2*o.Targets) {
				fmt.Fprintf(o.Log, "serve: probe: %.0f attempts after %v, fewer than two rounds of %d targets: it has not kept up\n",
					probed, elapsed.Round(time.Second), o.Targets)
			}
			before, windowStart = m, time.Now()
			if cpu0, err = cpuTime(pid); err != nil {
				return u, 0, 0, 0, err
			}
			if machine0, err = readMachineCPU(); err != nil {
				return u, 0, 0, 0, err
			}
		}
		r, err := residentMB(pid)
		if err != nil {
			return u, 0, 0, 0, err
		}
		rss = append(rss, r)
		live, ok := m["go_gc_heap_live_bytes"]
		if !ok {
			return u, 0, 0, 0, errors.New("/metrics has no go_gc_heap_live_bytes")
		}
		heap = append(heap, live/(1<<20))
		// The window ends at the tick Duration after its start (the start
		// was taken after that tick's scrape).
		if time.Since(windowStart) >= o.Duration-o.Every/2 {
			after, series, size = m, n, b
			break
		}
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return u, 0, 0, 0, err
	}
	machine1, err := readMachineCPU()
	if err != nil {
		return u, 0, 0, 0, err
	}
	u.CPU, u.Busy = cpu1-cpu0, machine1.busySince(machine0)
	for _, result := range []string{"success", "failure"} {
		key := `probe_exporter_probes_total{result="` + result + `",trigger="schedule"}`
		n := int(after[key] - before[key])
		u.Attempts += n
		if result == "success" {
			u.OK = n
		}
	}
	u.RSSDrift, u.HeapDrift = drift(rss), drift(heap)
	u.PhaseMeans = phaseMeans(before, after)
	var buckets []string
	for k, v := range after {
		if le, ok := strings.CutPrefix(k, `probe_schedule_lateness_seconds_bucket{le="`); ok {
			buckets = append(buckets, strings.TrimSuffix(le, `"}`)+":"+strconv.FormatFloat(v-before[k], 'f', 0, 64))
		}
	}
	slices.SortFunc(buckets, func(a, b string) int {
		x, _ := strconv.ParseFloat(a[:strings.IndexByte(a, ':')], 64)
		y, _ := strconv.ParseFloat(b[:strings.IndexByte(b, ':')], 64)
		return cmp.Compare(x, y)
	})
	fmt.Fprintf(o.Log, "serve: probe: lateness, attempts at most so late (s): %s; phases' means %v\n", strings.Join(buckets, " "), u.PhaseMeans)
	fmt.Fprintf(o.Log, "serve: probe: %d attempts (%d ok), CPU %v, the machine %.0f %% busy, RSS %.0f to %.0f MB, live heap %.0f to %.0f MB, /metrics %d series, %d bytes\n",
		u.Attempts, u.OK, u.CPU, 100*u.Busy, rss[0], rss[len(rss)-1], heap[0], heap[len(heap)-1], series, size)
	return u, histogramQuantile(0.99, "probe_schedule_lateness_seconds", before, after), series, size, nil
}

// serveBlackbox runs blackbox_exporter and Prometheus, which scrapes its
// /probe for each target, and measures both.
func serveBlackbox(ctx context.Context, o serveOptions, dir, caFile, resolvConf, targets string) (u serveUsage, err error) {
	bb, err := startBlackbox(nil, false, resolvConf, caFile, "")
	if err != nil {
		return u, err
	}
	defer func() { err = errors.Join(err, bb.close()) }()
	promDir := filepath.Join(dir, "prometheus")
	if err := os.Mkdir(promDir, 0o755); err != nil {
		return u, err
	}
	conf := filepath.Join(promDir, "prometheus.yml")
	timeout := o.Every - o.Every/10
	src := fmt.Sprintf(servePrometheusConfig, promDuration(o.Every), promDuration(timeout), targets, strings.TrimPrefix(bb.base, "http://"))
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		return u, err
	}
	listen, err := lab.FreeAddr()
	if err != nil {
		return u, err
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return u, fmt.Errorf("%w (install the Debian package prometheus; .ci/deps does)", err)
	}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+listen.String(), "--log.level=error")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return u, err
	}
	defer func() {
		cmd.Process.Kill()
		if werr := cmd.Wait(); werr != nil && !isKilled(werr) {
			err = errors.Join(err, fmt.Errorf("prometheus: %w; log: %s", werr, lastLines(stderr.String(), 10)))
		}
	}()
	pids := []int{bb.cmd.Process.Pid, cmd.Process.Pid}
	api := "http://" + listen.String() + "/api/v1/query"
	// The warm-up starts once Prometheus has scraped every target.
	for deadline := time.Now().Add(time.Minute + 2*o.Every); ; {
		n, err := promQuery(ctx, api, `count(up{job="blackbox"})`, "")
		if err == nil && int(n) >= o.Targets {
			break
		}
		if time.Now().After(deadline) {
			return u, fmt.Errorf("prometheus has scraped %v of %d targets (%v); log: %s", n, o.Targets, err, lastLines(stderr.String(), 10))
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return u, err
		}
	}
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		return u, err
	}
	cpu0, err := cpuTimes(pids)
	if err != nil {
		return u, err
	}
	machine0, err := readMachineCPU()
	if err != nil {
		return u, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, o.Duration); err != nil {
		return u, err
	}
	cpu1, err := cpuTimes(pids)
	if err != nil {
		return u, err
	}
	machine1, err := readMachineCPU()
	if err != nil {
		return u, err
	}
	end := time.Now()
	u.CPU, u.Busy = cpu1-cpu0, machine1.busySince(machine0)
	// A scrape stamps its samples with its start: those of the window's
	// last scrapes are in once their timeout has passed.
	if err := sleepCtx(ctx, timeout+time.Second); err != nil {
		return u, err
	}
	// The scrapes whose samples Prometheus stamped within the window.
	window := strconv.FormatInt(end.Sub(start).Milliseconds(), 10) + "ms"
	at := strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)
	scrapes, err := promQuery(ctx, api, `sum(count_over_time(up{job="blackbox"}[`+window+`]))`, at)
	if err != nil {
		return u, err
	}
	ok, err := promQuery(ctx, api, `sum(sum_over_time(probe_success{job="blackbox"}[`+window+`]))`, at)
	if err != nil {
		return u, err
	}
	u.Attempts, u.OK = int(scrapes), int(ok)
	fmt.Fprintf(o.Log, "serve: blackbox_exporter and Prometheus: %d scrapes (%d ok), CPU %v, the machine %.0f %% busy\n",
		u.Attempts, u.OK, u.CPU, 100*u.Busy)
	if u.Attempts == 0 {
		return u, fmt.Errorf("prometheus scraped nothing in %v; log: %s", o.Duration, lastLines(stderr.String(), 10))
	}
	return u, nil
}

// promDuration writes d as Prometheus's configuration does: whole
// milliseconds.
func promDuration(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// promQuery returns the value of Prometheus's instant query q at time at
// (Unix seconds; "" for now), a scalar or a vector of one sample; 0 for an
// empty vector.
func promQuery(ctx context.Context, api, q, at string) (float64, error) {
	v := url.Values{"query": {q}}
	if at != "" {
		v.Set("time", at)
	}
	u := api + "?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("query %s: %w", q, err)
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("query %s: %s %s", q, out.Status, out.Error)
	}
	if len(out.Data.Result) == 0 {
		return 0, nil
	}
	return strconv.ParseFloat(fmt.Sprint(out.Data.Result[0].Value[1]), 64)
}

// scrapeMetrics GETs a /metrics in the text format and returns the samples
// whose line starts with one of keep, by name and labels, with how many
// samples and bytes the whole answer had.
func scrapeMetrics(ctx context.Context, client *http.Client, u string, keep []string) (map[string]float64, int, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	out := map[string]float64{}
	var series, size int
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		size += len(line) + 1
		if line == "" || line[0] == '#' {
			continue
		}
		series++
		if !slices.ContainsFunc(keep, func(p string) bool { return strings.HasPrefix(line, p) }) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("metrics: line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, series, size, sc.Err()
}

// phaseMeans returns the mean of each phase of
// probe_attempt_phase_duration_seconds between two scrapes, over all
// targets.
func phaseMeans(before, after map[string]float64) map[string]time.Duration {
	const name = "probe_attempt_phase_duration_seconds"
	sums, counts := map[string]float64{}, map[string]float64{}
	for k, v := range after {
		total := sums
		rest, ok := strings.CutPrefix(k, name+"_sum{")
		if !ok {
			total = counts
			if rest, ok = strings.CutPrefix(k, name+"_count{"); !ok {
				continue
			}
		}
		_, phase, ok := strings.Cut(rest, `phase="`)
		if !ok {
			continue
		}
		phase, _, _ = strings.Cut(phase, `"`)
		total[phase] += v - before[k]
	}
	means := map[string]time.Duration{}
	for phase, n := range counts {
		if n > 0 {
			means[phase] = time.Duration(sums[phase] / n * float64(time.Second))
		}
	}
	return means
}

// histogramQuantile returns the q-quantile of the histogram name's
// observations between two scrapes, interpolated linearly within its
// bucket, as PromQL's histogram_quantile does.
func histogramQuantile(q float64, name string, before, after map[string]float64) time.Duration {
	type bucket struct{ le, n float64 }
	var buckets []bucket
	prefix := name + `_bucket{le="`
	for k, v := range after {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(k, prefix), `"}`), 64)
		if err != nil {
			continue
		}
		buckets = append(buckets, bucket{le, v - before[k]})
	}
	slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(buckets) == 0 || buckets[len(buckets)-1].n == 0 {
		return 0
	}
	rank := q * buckets[len(buckets)-1].n
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return time.Duration(lower * float64(time.Second))
			}
			return time.Duration((lower + (b.le-lower)*(rank-below)/(b.n-below)) * float64(time.Second))
		}
		lower, below = b.le, b.n
	}
	return 0
}

// drift returns how much the samples grew from the start of a run to its
// end: the median of its last fifth less the median of its first.
func drift(v []float64) float64 {
	n := max(1, len(v)/5)
	return medianOf(v[len(v)-n:]) - medianOf(v[:n])
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user and system time process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 14th and 15th of the line, the 12th and 13th here.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuTimes sums cpuTime over pids.
func cpuTimes(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		d, err := cpuTime(pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// machineCPU is the CPU time of all the machine's CPUs since it booted, in
// seconds (/proc/stat).
type machineCPU struct{ busy, all float64 }

// readMachineCPU reads the machine's CPU time: busy is all but idle and
// waiting for I/O; time the hypervisor stole counts as busy, since no
// process of the machine could have it.
func readMachineCPU() (machineCPU, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return machineCPU{}, err
	}
	st, err := fs.Stat()
	if err != nil {
		return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
	}
	c := st.CPUTotal // guest time is within user time
	all := c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
	return machineCPU{busy: all - c.Idle - c.Iowait, all: all}, nil
}

// busySince returns the share of the machine's CPU time that was busy
// between then and m.
func (m machineCPU) busySince(then machineCPU) float64 {
	if m.all <= then.all {
		return math.NaN()
	}
	return (m.busy - then.busy) / (m.all - then.all)
}

// residentMB returns process pid's resident set in MB (VmRSS).
func residentMB(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// sleepCtx sleeps for d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

//go:build linux

// Command bench measures probe side by side with a plain Go loop,
// blackbox_exporter and curl (DESIGN §9; docs/performance.md): timing
// accuracy across the delay link, preconnect's first request cold and warm
// across it, throughput on loopback with the plugins in and out of process,
// a run of 100,000 targets, and of a million from a targets file, TLS phases and scheduling delay against
// concurrency, the status page's history per target, start-up, and a whole
// `probe run -o json` process against a plain Go program's. It prints one line per figure, "name value",
// last. `make bench` runs it; it needs root
// and /dev/net/tun for the delay link, prometheus-blackbox-exporter and curl.
//
//	bench -probe bin/probe -banner bin/probe-plugin-banner
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/history"
	"github.com/probe-dev/probe/core/sdk"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case plainLoopCmd:
			os.Exit(plainLoopMain(os.Args[2:]))
		case plainTLSCmd:
			os.Exit(plainTLSMain(os.Args[2:]))
		case farLabCmd:
			os.Exit(farLabMain())
		case labCmd:
			os.Exit(labMain())
		case preconnectCmd:
			os.Exit(preconnectMain(os.Args[2:]))
		}
	}
	probe := flag.String("probe", "bin/probe", "the probe binary")
	banner := flag.String("banner", "bin/probe-plugin-banner", "the banner example plugin's binary")
	targets := flag.Int("targets", 100_000, "targets of the scale run")
	serve := flag.Int("serve-targets", 10_000, "targets of the serve run")
	window := flag.Duration("serve-window", 3*time.Minute, "the measured window of each contender of the serve run")
	only := flag.String("only", "", "run only these stages, comma-separated: accuracy, loaded, preconnect, throughput, otel, scale, scale1m, concurrency, serve, startup, process")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	var stageNames []string
	if *only != "" {
		stageNames = strings.Split(*only, ",")
	}
	figs, err := run(ctx, os.Stderr, benchBins{probe: *probe, banner: *banner, self: self}, sizes{*targets, *serve, *window}, stageNames)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	for _, f := range figs {
		fmt.Println(f)
	}
}

// figure is one measured number.
type figure struct {
	name     string
	value    float64
	decimals int
}

func (f figure) String() string {
	return f.name + " " + strconv.FormatFloat(f.value, 'f', f.decimals, 64)
}

// benchBins are the binaries a benchmark runs.
type benchBins struct {
	probe  string // the probe binary
	banner string // the banner example plugin
	self   string // a binary of this command: the plain loop (plainLoopCmd), the far lab (farLabCmd)
}

// stage is one measurement; it adds its figures with add.
type stage struct {
	name string
	run  func(ctx context.Context, log io.Writer, bins benchBins, add func(name string, v float64, decimals int)) error
}

// sizes size the stages that take them from the command line.
type sizes struct {
	targets      int           // of the scale run
	serveTargets int           // of the serve run
	serveWindow  time.Duration // the serve run's measured window, per contender
}

// stages are the measurements in the order they run: those across the delay
// link first, while the machine is quiet.
func stages(sz sizes) []stage {
	targets := sz.targets
	return []stage{
		{"accuracy", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			acc, err := measureAccuracy(ctx, accuracyOptions{
				Delay: 20 * time.Millisecond, Rounds: 5, PerRound: 10, Probe: bins.probe, Self: bins.self,
				Tools: true, MaxLate: 300 * time.Microsecond, Repeats: 10,
			})
			if err != nil {
				return err
			}
			for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
				add("accuracy.true_"+phase+"_ms", acc.True[phase], 3)
			}
			for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
				add("accuracy."+phase+"_err_ms", acc.Err[toolProbe][phase], 3)
				add("accuracy.blackbox_"+phase+"_err_ms", acc.Err[toolBlackbox][phase], 3)
				add("accuracy.curl_"+phase+"_err_ms", acc.Err[toolCurl][phase], 3)
			}
			for _, tool := range []string{toolProbe, toolBlackbox, toolCurl} {
				for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
					add("accuracy."+tool+"_"+phase+"_bias_ms", acc.Bias[tool][phase], 3)
				}
			}
			add("accuracy.connect_tls_err_ms", acc.Err[toolProbe][phaseConnectTLS], 3)
			add("accuracy.blackbox_tcp_connect_tls_err_ms", acc.Err[toolBlackboxTCP][phaseConnectTLS], 3)
			// The noise floor: the reference's own scatter about its median.
			for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
				add("accuracy.plain_"+phase+"_self_err_ms", acc.Err[toolPlain][phase], 3)
			}
			add("accuracy.link_lateness_p99_us", float64(acc.Lateness)/float64(time.Microsecond), 0)
			add("accuracy.repeated_rounds", float64(acc.Repeated), 0)
			return nil
		}},
		{"loaded", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			// The same across the link with both cores saturated, the tools
			// at a normal priority beside stress-ng (docs/performance.md).
			acc, err := measureAccuracy(ctx, accuracyOptions{
				Delay: 20 * time.Millisecond, Rounds: 5, PerRound: 10, Probe: bins.probe, Self: bins.self,
				Tools: true, MaxLate: 300 * time.Microsecond, Repeats: 10, Load: 2,
			})
			if err != nil {
				return err
			}
			for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
				add("accuracy.loaded_"+phase+"_err_ms", acc.Err[toolProbe][phase], 3)
				add("accuracy.loaded_blackbox_"+phase+"_err_ms", acc.Err[toolBlackbox][phase], 3)
				add("accuracy.loaded_curl_"+phase+"_err_ms", acc.Err[toolCurl][phase], 3)
			}
			for _, tool := range []string{toolProbe, toolBlackbox, toolCurl} {
				for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
					add("accuracy.loaded_"+tool+"_"+phase+"_bias_ms", acc.Bias[tool][phase], 3)
				}
			}
			for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
				add("accuracy.loaded_plain_"+phase+"_self_err_ms", acc.Err[toolPlain][phase], 3)
			}
			add("accuracy.loaded_link_lateness_p99_us", float64(acc.Lateness)/float64(time.Microsecond), 0)
			add("accuracy.loaded_repeated_rounds", float64(acc.Repeated), 0)
			return nil
		}},
		{"preconnect", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			pc, err := measurePreconnect(ctx, preconnectOptions{Delay: 20 * time.Millisecond, Rounds: 15, Self: bins.self, Log: log})
			if err != nil {
				return err
			}
			add("preconnect.cold_ms", pc.Cold, 1)
			add("preconnect.warm_ms", pc.Warm, 1)
			add("preconnect.ratio", pc.Ratio, 2)
			add("preconnect.rtt_ms", pc.RTT, 3) // measured: the cold requests' median TCP connect
			return nil
		}},
		{"throughput", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			tp, err := measureThroughput(ctx, throughputOptions{Attempts: 960, Rounds: 9, Concurrency: 32, Probe: bins.probe, Log: log})
			if err != nil {
				return err
			}
			add("throughput.raw_per_s", tp.Raw, 0)
			add("throughput.builtin_per_s", tp.Builtin, 0)
			add("throughput.isolated_per_s", tp.Isolated, 0)
			add("throughput.blackbox_per_s", tp.Blackbox, 0)
			add("throughput.builtin_vs_raw", tp.BuiltinVsRaw, 2)
			add("throughput.isolated_vs_raw", tp.IsolatedVsRaw, 2)
			add("throughput.probe_vs_blackbox", tp.BuiltinVsBlackbox, 2)
			return nil
		}},
		{"otel", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			dc, err := measureDeadCollector(ctx, throughputOptions{Attempts: 960, Rounds: 9, Concurrency: 32, Log: log})
			if err != nil {
				return err
			}
			add("otel.alone_per_s", dc.Alone, 0)
			add("otel.dead_collector_per_s", dc.Dead, 0)
			add("otel.dead_collector_vs_alone", dc.Ratio, 2)
			add("otel.dead_collector_dropped_spans", float64(dc.Dropped), 0)
			return nil
		}},
		{"scale", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			sc, err := measureScale(ctx, scaleOptions{Targets: targets, Concurrency: 256, Probe: bins.probe})
			if err != nil {
				return err
			}
			prefix := fmt.Sprintf("scale.targets_%dk_", targets/1000)
			add(prefix+"wall_s", sc.Wall.Seconds(), 1)
			add(prefix+"rss_mb", float64(sc.RSS)/(1<<20), 0)
			add(prefix+"max_fds", float64(sc.MaxFDs), 0)
			return nil
		}},
		scaleFileStage(),
		{"concurrency", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			all := []int{1, 2, 4, 8, 16, 32, 64}
			for _, series := range []concurrencyOptions{
				{Name: "loopback", Concurrency: all, Rounds: 5},
				{Name: "delayed", Concurrency: all, Rounds: 5, ServerDelayed: true},
				{Name: "delayed_1proc", Concurrency: []int{1, 4, 8, 16, 32}, Rounds: 3, ServerDelayed: true, Procs: 1},
			} {
				series.Targets, series.Probe, series.Log = 200, bins.probe, log
				points, err := measureConcurrency(ctx, series)
				if err != nil {
					return fmt.Errorf("%s: %w", series.Name, err)
				}
				for _, p := range points {
					prefix := "concurrency." + series.Name + "_" + strconv.Itoa(p.Concurrency) + "_"
					add(prefix+"tls_ms", p.TLS, 3)
					add(prefix+"tls_ratio", p.TLSRatio, 2)
					add(prefix+"wait_share", p.WaitShare, 3)
					add(prefix+"distorted_runs", float64(p.Distorted), 0)
					add(prefix+"wall_ms", p.Wall, 0)
				}
			}
			return nil
		}},
		{"serve", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			// The status page's history: 1,000 targets every 15s over 24h.
			add("serve.history_bytes_per_target", history.BytesPerTarget(1000, 15*time.Second, history.DefaultRetain), 0)
			// Continuous service: probe serve against blackbox_exporter
			// scraped by Prometheus, 10,000 TLS targets every 10s.
			sv, err := measureServe(ctx, serveOptions{Targets: sz.serveTargets, Servers: 4, Every: 10 * time.Second,
				Warmup: 20 * time.Second, Duration: sz.serveWindow, Probe: bins.probe, Log: log})
			if err != nil {
				return err
			}
			addServe(add, sv)
			return nil
		}},
		{"startup", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			st, err := measureStartup(ctx, bins.probe, bins.banner, 10)
			if err != nil {
				return err
			}
			add("startup.builtin_ms", sdk.Milliseconds(st.Builtin), 1)
			add("startup.external_ms", sdk.Milliseconds(st.External), 1)
			for _, phase := range firstAttemptPhases {
				add("startup.first_"+phase+"_excess_ms", sdk.Milliseconds(st.FirstExcess[phase]), 2)
			}
			for _, phase := range firstAttemptPhases {
				add("startup.sysroots_first_"+phase+"_excess_ms", sdk.Milliseconds(st.SystemRootsFirstExcess[phase]), 2)
			}
			return nil
		}},
		{"process", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
			pr, err := measureProcess(ctx, processOptions{Targets: 32, Attempts: 60, Rounds: 9, Probe: bins.probe, Self: bins.self, Log: log})
			if err != nil {
				return err
			}
			add("process.probe_ms", sdk.Milliseconds(pr.Probe), 1)
			add("process.go_loop_ms", sdk.Milliseconds(pr.Plain), 1)
			add("process.vs_go_loop", pr.Ratio, 2)
			add("process.json_bytes_per_attempt", pr.JSONBytesPerAttempt, 0)
			return nil
		}},
	}
}

// addServe adds the figures of a service run.
func addServe(add func(string, float64, int), sv serveResult) {
	add("serve.cpu_s_per_1k_attempts", sv.Probe.perK(), 3)
	add("serve.blackbox_cpu_s_per_1k_attempts", sv.Blackbox.perK(), 3)
	add("serve.cpu_vs_blackbox", sv.Probe.perK()/sv.Blackbox.perK(), 2)
	add("serve.attempts", float64(sv.Probe.Attempts), 0)
	add("serve.ok_attempts", float64(sv.Probe.OK), 0)
	add("serve.blackbox_attempts", float64(sv.Blackbox.Attempts), 0)
	add("serve.blackbox_ok_attempts", float64(sv.Blackbox.OK), 0)
	add("serve.rss_drift_mb", sv.Probe.RSSDrift, 1)
	add("serve.heap_drift_mb", sv.Probe.HeapDrift, 1)
	add("serve.machine_busy", sv.Probe.Busy, 2)
	add("serve.blackbox_machine_busy", sv.Blackbox.Busy, 2)
	add("serve.schedule_lateness_p99_ms", sdk.Milliseconds(sv.LatenessP99), 2)
	for _, phase := range []string{"resolve", "connect", "tls"} {
		add("serve."+phase+"_mean_ms", sdk.Milliseconds(sv.Probe.PhaseMeans[phase]), 3)
	}
	add("serve.metrics_series", float64(sv.MetricsSeries), 0)
	add("serve.metrics_bytes", float64(sv.MetricsBytes), 0)
}

// run runs the stages named in only (all when empty) and logs progress on
// log.
func run(ctx context.Context, log io.Writer, bins benchBins, sz sizes, only []string) ([]figure, error) {
	all := stages(sz)
	names := make([]string, len(all))
	for i, st := range all {
		names[i] = st.name
	}
	for _, name := range only {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("no stage %q: the stages are %s", name, strings.Join(names, ", "))
		}
	}
	var figs []figure
	add := func(name string, v float64, decimals int) { figs = append(figs, figure{name, v, decimals}) }
	for _, st := range all {
		if len(only) > 0 && !slices.Contains(only, st.name) {
			continue
		}
		fmt.Fprintf(log, "bench: %s\n", st.name)
		start := time.Now()
		if err := st.run(ctx, log, bins, add); err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
		fmt.Fprintf(log, "bench: %s took %.1fs\n", st.name, time.Since(start).Seconds())
	}
	return figs, nil
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/exporter"
	"github.com/probe-dev/probe/core/otel"
	"github.com/probe-dev/probe/core/sink"
	"github.com/spf13/cobra"
)

// shutdownGrace is how long `probe serve` waits for probes in flight when
// told to stop.
const shutdownGrace = 10 * time.Second

func newServeCmd() *cobra.Command {
	var ff fileFlags
	var web exporter.ServerOptions
	listen := "127.0.0.1:9115"
	c := &cobra.Command{
		Use:   "serve FILE",
		Short: "Serve a pipeline file to Prometheus: /probe?target=NAME and /metrics",
		Long: `Serve a pipeline file over HTTP as a multi-target exporter, like
blackbox_exporter: Prometheus asks /probe?target=NAME for a target of the file
(for_each names URL-encoded: broken%5Bexpired%5D), or
/probe?target=HOST:PORT&pipeline=NAME for any host probed with a pipeline of
the file, and gets the metrics of one attempt made then: probe_success,
probe_duration_seconds, probe_phase_duration_seconds{phase},
probe_failure{phase,class}, probe_tls_cert_not_after_seconds and
probe_http_status_code, and with serve { blackbox_names = true }
blackbox_exporter's own families too (blackbox's query form
?target=...&module=NAME is taken as well). The target is not a label: the
scrape names it. The
attempt's deadline is the file's timeout or Prometheus's scrape timeout
(X-Prometheus-Scrape-Timeout-Seconds, less a tenth, at most 0.5s), whichever
comes first, and it covers the whole scrape.

probe runs as many probes at once, and holds as many connections, as the
file descriptor limit (ulimit -n) leaves room for, at most 256 of each. A
scrape that cannot wait for a probe slot and still have its whole deadline
is answered 503 (probe_exporter_scrapes_shed_total), never probe_success 0.
Holding its most connections, probe closes one that serves no request each
time another comes; a keep-alive connection is closed after 60s idle.

/metrics has probe's own health (Go runtime and process, probes by result,
reloads, log lines by level) and, when the file has a schedule block
(schedule { every = "15s" }), the targets probed on that schedule:
histograms per target and phase and the latest attempt's gauges with a
target label, named probe_scheduled_success and so on so that a rule on
/probe's probe_success matches each target once.

With a schedule block, / is a status page: every target's state, and per
target its attempts over time per phase, its latest attempt's waterfall and
its certificate's days left, kept in memory for schedule { retain = "24h" }
(lost on restart). The page reads a JSON API under /api/v1/ (targets,
series?target=NAME, latest?target=NAME); docs/output.md describes both.

SIGHUP reloads the file (and POST /-/reload with --web.enable-lifecycle);
probes in flight finish on the old one. So does a change of a target list
the file reads with file_sd (looked at every second), and, for a file that
calls dns_srv, every round of its schedule (every minute without one). A
file with errors is logged with its diagnostics (and they are the answer to
POST /-/reload) and the old one kept. SIGINT and SIGTERM stop the server
after the probes in flight (at most 10s).

The ad-hoc form probes only what the file allows: its own targets, and the
hosts and ports of its serve { adhoc { allow = ["10.0.0.0/8",
"*.internal:443", "127.0.0.1:*"] } } list; anything else is answered 403
unprobed (probe_exporter_adhoc_refused_total). A pipeline that holds a
sensitive value goes only to the file's own targets. --web.config.file
takes the web configuration file of blackbox_exporter and Prometheus
(exporter-toolkit's format): TLS, client certificates, basic auth with
bcrypt hashes. Without it, probe listens on loopback unless told otherwise.`,
		Example: `  probe serve pipeline.hcl
  probe serve pipeline.hcl --listen :9115 -var env=prod
  curl 'http://127.0.0.1:9115/probe?target=api'
  curl 'http://127.0.0.1:9115/probe?target=example.com:443&pipeline=https'   # if serve.adhoc allows it
  probe serve pipeline.hcl --listen :9115 --web.config.file web.yml --web.enable-lifecycle
  kill -HUP $(pidof probe)   # reload pipeline.hcl

  # prometheus.yml
  scrape_configs:
    - job_name: probe
      metrics_path: /probe
      static_configs:
        - targets: [api, "broken[expired]"]
      relabel_configs:
        - source_labels: [__address__]
          target_label: __param_target
        - source_labels: [__param_target]
          target_label: instance
        - target_label: __address__
          replacement: 127.0.0.1:9115`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return serve(args[0], listen, web, &ff)
		},
	}
	c.Flags().StringVar(&listen, "listen", listen, "address to listen on, host:port")
	c.Flags().StringVar(&web.WebConfigFile, "web.config.file", "",
		"web configuration file (exporter-toolkit's format): TLS, client certificates, basic auth")
	c.Flags().BoolVar(&web.EnableLifecycle, "web.enable-lifecycle", false, "let POST /-/reload reload the file")
	ff.register(c)
	ff.registerVantage(c)
	ff.registerOTel(c)
	return c
}

// serve runs the exporter for the pipeline file at path on listen until
// SIGINT or SIGTERM.
func serve(path, listen string, web exporter.ServerOptions, ff *fileFlags) error {
	scheme := "http"
	if web.WebConfigFile != "" {
		tls, err := exporter.ValidateWebConfig(web.WebConfigFile)
		if err != nil {
			return &exitError{code: exitUsage, msg: err.Error()}
		}
		if tls {
			scheme = "https"
		}
	}
	log := logger()
	if verbosity == 0 {
		log.SetLevel(hclog.Info)
	}
	// Signals are caught from the start: one that comes while the file and
	// its plugins load is handled once the exporter runs, and the plugins
	// started so far are stopped, not orphaned.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	// The first load prints the file's diagnostics on stderr, as the other
	// commands do. A reload's go into its error instead, which the log and
	// the answer to POST /-/reload carry: whoever asked sees why.
	reloading := false     // guarded by the exporter: one load at a time
	var sources discovered // what the file read of file_sd and dns_srv
	// The hosts of the targets of the file last loaded, for traces.
	var fileHosts atomic.Value
	load := func() (*config.File, io.Closer, error) {
		var diags bytes.Buffer
		out := io.Writer(os.Stderr)
		if reloading {
			out = &diags
		}
		reloading = true
		file, pl, err := ff.loadTo(out, path, nil, nil)
		if err == nil {
			fileHosts.Store(targetHosts(file.Targets, file.Options.Secrets))
			_, _ = diags.WriteTo(os.Stderr) // a reloaded file's warnings
			sources.set(file)
			return file, pl, nil
		}
		if ee := (*exitError)(nil); errors.As(err, &ee) && ee.msg == "" {
			msg := path + " did not load; see above"
			if diags.Len() > 0 {
				msg = path + " did not load:\n\n" + strings.TrimSpace(diags.String())
			}
			err = &exitError{code: ee.code, msg: msg}
		}
		return nil, nil, err
	}
	var export *otel.Sink
	sinks := func(file *config.File) ([]sink.Sink, error) {
		// A scrape names a target of the file, or HOST:PORT.
		hosts := func(name string) (string, uint16, bool) {
			if h, ok := fileHosts.Load().(func(string) (string, uint16, bool)); ok {
				if host, port, ok := h(name); ok {
					return host, port, true
				}
			}
			return adHocHost(name)
		}
		var err error
		if export, err = ff.otelExport(file, log, hosts); err != nil || export == nil {
			return nil, err
		}
		return []sink.Sink{export}, nil
	}
	exp, err := exporter.New(exporter.Options{Load: load, Logger: log, Sinks: sinks})
	if err != nil {
		return err
	}
	defer exp.Close()
	if export != nil {
		defer func() { _ = export.Shutdown() }() // logs what it dropped
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("listen on %s: %v", listen, err)}
	}
	web.ErrorLog = log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	web.WebLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := exp.NewServer(web)
	fmt.Fprintf(os.Stderr, "probe serve: %s on %s (/probe?target=NAME, /metrics)\n", path, scheme+"://"+ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go watchDiscovery(watchCtx, &sources, exp.Reload, log)
	for {
		select {
		case err := <-served:
			return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = exp.Reload() // the exporter logs the outcome
				continue
			}
			log.Info("stopping", "signal", sig)
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				return fmt.Errorf("stop serving on %s: %w", ln.Addr(), err)
			}
			return nil
		}
	}
}

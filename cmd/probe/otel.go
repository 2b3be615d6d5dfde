package main

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/otel"
	"github.com/spf13/cobra"
)

// registerOTel adds --otlp-endpoint, for the commands that probe a file.
func (f *fileFlags) registerOTel(c *cobra.Command) {
	c.Flags().StringVar(&f.otlpEndpoint, "otlp-endpoint", "",
		"export every attempt as an OpenTelemetry trace, and the metrics, to this OTLP collector (http://HOST:4318); the file's otel block and OTEL_EXPORTER_OTLP_* say the rest")
}

// otelExport returns the sink exporting the attempts of file as traces and
// metrics when --otlp-endpoint or the file's otel block asks for it, else
// nil. hosts names the host and port of a target.
func (f *fileFlags) otelExport(file *config.File, log hclog.Logger, hosts func(string) (string, uint16, bool)) (*otel.Sink, error) {
	o := file.OTel
	if !o.Set && f.otlpEndpoint == "" {
		return nil, nil
	}
	endpoint := o.Endpoint
	if f.otlpEndpoint != "" {
		endpoint = f.otlpEndpoint
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	s, err := otel.New(context.Background(), otel.Options{Endpoint: endpoint, Headers: o.Headers, Insecure: o.Insecure,
		Vantage: file.Vantage, Version: version, Hosts: hosts, Logger: log.Named("otel")})
	if err != nil {
		return nil, &exitError{code: exitUsage, msg: fmt.Sprintf("OpenTelemetry export: %v", err)}
	}
	return s, nil
}

// targetHosts returns the hosts of targets, and of the targets of files,
// for traces, as the attempts name them: redacted with secrets, the file's
// sensitive values. It indexes targets when first asked, not before: a run
// that exports no trace holds no index of its targets.
func targetHosts(targets []*engine.Target, secrets []string, files ...*config.TargetsFile) func(string) (string, uint16, bool) {
	index := sync.OnceValue(func() map[string]*engine.Target {
		r := engine.NewRedactor(secrets)
		m := make(map[string]*engine.Target, len(targets))
		for _, t := range targets {
			t = r.Target(t)
			m[t.Name] = t
		}
		return m
	})
	return func(name string) (string, uint16, bool) {
		if t, ok := index()[name]; ok {
			return t.Host, t.Port, true
		}
		// A targets file's target is named BLOCK[HOST:PORT].
		for _, tf := range files {
			if addr, ok := strings.CutPrefix(name, tf.Name+"["); ok && strings.HasSuffix(addr, "]") {
				return adHocHost(strings.TrimSuffix(addr, "]"))
			}
		}
		return "", 0, false
	}
}

// adHocHost is the host and port of a target named HOST:PORT, as `probe
// serve` names one that a scrape asks for by address.
func adHocHost(name string) (string, uint16, bool) {
	host, p, err := net.SplitHostPort(name)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || host == "" {
		return "", 0, false
	}
	return host, uint16(port), true
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// startupHCL probes one loopback target with built-ins only: the system
// resolver answers the IP literal at once, then a TCP connect.
const startupHCL = `
resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}

target "local" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.tcp
}
`

// startupExternalHCL is the same with one external plugin: the banner
// example's handshake reads the server's greeting.
const startupExternalHCL = `
plugin "banner" { source = %q }

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "ssh" {
  plugin = "banner"
  expect = "^SSH-2\\.0-"
}

pipeline "ssh" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.ssh]
}

target "local" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.ssh
}
`

// startupTLSHCL probes the lab's TLS server twice, one attempt after the
// other, with built-ins.
const startupTLSHCL = `
run {
  mode     = "sequential"
  attempts = 2
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin      = "tls"
  ca_file     = %q
  server_name = %q
}

pipeline "https" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "local" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.https
}
`

// startupResult is the median wall time of `probe run` on one loopback
// target, and how much longer a fresh process's first TLS handshake takes
// than its second (the medians' difference): what a run of one attempt
// per target, probe's default, measures beyond the network and the server.
type startupResult struct {
	Builtin, External time.Duration
	FirstTLSExcess    time.Duration
}

// measureStartup runs the probe binary runs times on each pipeline, in
// turn, and takes the medians. banner is the banner example plugin's
// binary.
func measureStartup(ctx context.Context, probe, banner string, runs int) (res startupResult, err error) {
	srv, err := lab.StartTCP("SSH-2.0-lab\r\n")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	if banner, err = filepath.Abs(banner); err != nil { // the pipeline file is elsewhere
		return res, err
	}
	dir, err := os.MkdirTemp("", "probe-bench-startup-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	files := []string{filepath.Join(dir, "builtin.hcl"), filepath.Join(dir, "external.hcl")}
	srcs := []string{fmt.Sprintf(startupHCL, srv.Addr.Port()), fmt.Sprintf(startupExternalHCL, banner, srv.Addr.Port())}
	for i, f := range files {
		if err := os.WriteFile(f, []byte(srcs[i]), 0o644); err != nil {
			return res, err
		}
	}
	walls := make([][]float64, len(files))
	for range runs {
		for i, f := range files {
			cmd := exec.CommandContext(ctx, probe, "run", f, "-o", "json")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return res, fmt.Errorf("probe run %s: %w\n%s", f, err, &stderr)
			}
			walls[i] = append(walls[i], float64(time.Since(start)))
		}
	}
	res = startupResult{Builtin: time.Duration(medianOf(walls[0])), External: time.Duration(medianOf(walls[1]))}
	res.FirstTLSExcess, err = firstTLSExcess(ctx, probe, dir, 3*runs)
	return res, err
}

// firstTLSExcess runs the probe binary runs times against the lab's TLS
// server, two handshakes each, and returns the median of the first
// handshakes less the median of the second ones.
func firstTLSExcess(ctx context.Context, probe, dir string, runs int) (_ time.Duration, err error) {
	l, err := lab.Start()
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	file := filepath.Join(dir, "tls.hcl")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(startupTLSHCL, l.CAFile, labHost, l.TLS.Addr.Port())), 0o644); err != nil {
		return 0, err
	}
	var first, second []float64
	for range runs {
		out, err := exec.CommandContext(ctx, probe, "run", file, "-o", "json").Output()
		if err != nil {
			return 0, fmt.Errorf("probe run %s: %w", file, err)
		}
		var doc probeJSON
		if err := json.Unmarshal(out, &doc); err != nil {
			return 0, fmt.Errorf("probe run -o json: %w", err)
		}
		var tls []float64
		for _, t := range doc.Targets {
			for _, a := range t.Attempts {
				for _, p := range a.Phases {
					if p.Phase == phaseTLS {
						tls = append(tls, p.DurationMS)
					}
				}
			}
		}
		if len(tls) != 2 {
			return 0, fmt.Errorf("probe run %s: %d tls phases, want 2", file, len(tls))
		}
		first, second = append(first, tls[0]), append(second, tls[1])
	}
	return time.Duration((medianOf(first) - medianOf(second)) * float64(time.Millisecond)), nil
}

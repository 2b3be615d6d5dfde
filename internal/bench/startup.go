//go:build linux

package main

import (
	"bytes"
	"context"
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

// startupResult is the median wall time of `probe run` on one loopback
// target.
type startupResult struct {
	Builtin, External time.Duration
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
	return startupResult{Builtin: time.Duration(medianOf(walls[0])), External: time.Duration(medianOf(walls[1]))}, nil
}

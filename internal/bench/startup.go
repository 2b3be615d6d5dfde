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

// firstAttemptHCL probes the lab's TLS server over HTTPS ten times, one
// attempt after the other, with built-ins: localhost through dns-system,
// a TCP connect, TLS (%[1]s: a ca_file, or none for the system's roots)
// offering h2, and a GET of /.
const firstAttemptHCL = `
run {
  mode     = "sequential"
  attempts = 10
}

resolver "system" {
  plugin  = "dns-system"
  network = "ip4"
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin      = "tls"
  server_name = %[2]q
  alpn        = ["h2"]
  %[1]s
}

handshake "http" { plugin = "http" }

pipeline "https" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.http]
}

target "local" {
  host     = "localhost"
  port     = %[3]d
  pipeline = pipeline.https
}
`

// phaseHTTP is the http handshake's phase.
const phaseHTTP = "http"

// firstAttemptPhases are the phases of firstAttemptHCL, in order.
var firstAttemptPhases = []string{phaseResolve, phaseConnect, phaseTLS, phaseHTTP}

// distroRoots is the bundle of system roots Debian's ca-certificates
// installs (.ci/deps bench), the one Go's crypto/x509 loads first on Linux.
const distroRoots = "/etc/ssl/certs/ca-certificates.crt"

// startupResult is the median wall time of `probe run` on one loopback
// target, and how much longer each phase of a fresh process's first
// attempt takes than the median of its next nine: what a run of one
// attempt per target, probe's default, would measure beyond the network
// and the server. FirstExcess is by phase, with the lab's CA as ca_file;
// SystemRootsFirstExcess with no ca_file, the system's roots being
// Debian's bundle and the lab's CA (SSL_CERT_FILE).
type startupResult struct {
	Builtin, External      time.Duration
	FirstExcess            map[string]time.Duration
	SystemRootsFirstExcess map[string]time.Duration
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
	res.FirstExcess, res.SystemRootsFirstExcess, err = firstAttemptExcess(ctx, probe, dir, 3*runs)
	return res, err
}

// firstAttemptExcess runs the probe binary runs times against the lab's
// TLS server, ten attempts each, with ca_file and then with the system's
// roots, and returns by phase the median over the runs of the first
// attempt's duration less the median of the next nine.
func firstAttemptExcess(ctx context.Context, probe, dir string, runs int) (caFile, systemRoots map[string]time.Duration, err error) {
	l, err := lab.Start()
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	distro, err := os.ReadFile(distroRoots)
	if err != nil {
		return nil, nil, fmt.Errorf("the system roots' figures need Debian's bundle (apt-get install ca-certificates): %w", err)
	}
	bundle, certDir := filepath.Join(dir, "roots.pem"), filepath.Join(dir, "certs")
	if err := os.WriteFile(bundle, append(distro, l.CA.CertPEM...), 0o644); err != nil {
		return nil, nil, err
	}
	if err := os.Mkdir(certDir, 0o755); err != nil {
		return nil, nil, err
	}
	port := l.TLS.Addr.Port()
	caFile, err = firstExcess(ctx, probe, filepath.Join(dir, "cafile.hcl"),
		fmt.Sprintf(firstAttemptHCL, fmt.Sprintf("ca_file = %q", l.CAFile), labHost, port), nil, runs)
	if err != nil {
		return nil, nil, err
	}
	// Only these roots, and no directory's: /etc/ssl/certs holds the
	// bundle's roots again, one file each.
	env := append(os.Environ(), "SSL_CERT_FILE="+bundle, "SSL_CERT_DIR="+certDir)
	systemRoots, err = firstExcess(ctx, probe, filepath.Join(dir, "sysroots.hcl"),
		fmt.Sprintf(firstAttemptHCL, "", labHost, port), env, runs)
	return caFile, systemRoots, err
}

// firstExcess writes src to file and runs the probe binary on it runs
// times, plus once before to warm the server up, with the environment env
// (nil for the bench's own). It returns by phase the median over the runs
// of the first attempt less the median of the other nine.
func firstExcess(ctx context.Context, probe, file, src string, env []string, runs int) (map[string]time.Duration, error) {
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return nil, err
	}
	excess := map[string][]float64{}
	for i := range runs + 1 {
		cmd := exec.CommandContext(ctx, probe, "run", file, "-o", "json")
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("probe run %s: %w\n%s", file, err, &stderr)
		}
		var doc probeJSON
		if err := json.Unmarshal(out, &doc); err != nil {
			return nil, fmt.Errorf("probe run -o json: %w", err)
		}
		durations := map[string][]float64{}
		for _, t := range doc.Targets {
			for _, a := range t.Attempts {
				if !a.OK {
					return nil, fmt.Errorf("probe run %s: an attempt failed", file)
				}
				for _, p := range a.Phases {
					durations[p.Phase] = append(durations[p.Phase], p.DurationMS)
				}
			}
		}
		if i == 0 { // the server's own first handshakes
			continue
		}
		for _, phase := range firstAttemptPhases {
			d := durations[phase]
			if len(d) != 10 {
				return nil, fmt.Errorf("probe run %s: %d %s phases, want 10", file, len(d), phase)
			}
			excess[phase] = append(excess[phase], d[0]-medianOf(d[1:]))
		}
	}
	res := map[string]time.Duration{}
	for phase, e := range excess {
		res[phase] = time.Duration(medianOf(e) * float64(time.Millisecond))
	}
	return res, nil
}

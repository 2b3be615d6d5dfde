//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// The whole process: `probe run -o json` of targets × attempts connects
// and TLS handshakes, start-up and output included, against a plain Go
// program making the same handshakes, each a process of its own.

// processHCL connects to the lab's TLS server by its IP literal and
// handshakes with server_name set: targets targets of attempts attempts
// each, all targets at once. dns-system answers the IP literal without a
// query, as the plain program's dialer does.
const processHCL = `
run {
  concurrency = %[1]d
  attempts    = %[2]d
  timeout     = "5s"
}

resolver "system" { plugin = "dns-system" }

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin      = "tls"
  server_name = %[3]q
  ca_file     = %[4]q
}

pipeline "tls" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "api" {
  for_each = toset([for i in range(%[1]d) : tostring(i)])
  host     = "127.0.0.1"
  port     = %[5]d
  pipeline = pipeline.tls
}
`

// plainTLSCmd is the hidden first argument under which this command runs
// the plain program of the process stage (plainTLSMain).
const plainTLSCmd = "plain-tls"

// processOptions size a process run.
type processOptions struct {
	Targets, Attempts int       // targets, and attempts of each, one after another
	Rounds            int       // rounds after a warm-up; figures are medians
	Probe, Self       string    // the probe binary; this command's, for the plain program
	Log               io.Writer // each round's times; nil for none
}

// processResult is the median wall time of each process, the median of
// the rounds' ratios (the plain program's time over probe's: 1 means probe
// as fast), and the size of probe's JSON per attempt.
type processResult struct {
	Probe, Plain         time.Duration
	Ratio                float64
	JSONBytesPerAttempt  float64
	Attempts, JSONBytes  int
	ProbeRuns, PlainRuns []time.Duration
}

// measureProcess runs probe and the plain program in turn, in rounds,
// against one loopback lab: each round starts with the other.
func measureProcess(ctx context.Context, o processOptions) (res processResult, err error) {
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	dir, err := os.MkdirTemp("", "probe-bench-process-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	file, out := filepath.Join(dir, "process.hcl"), filepath.Join(dir, "out.json")
	src := fmt.Sprintf(processHCL, o.Targets, o.Attempts, labHost, l.CAFile, l.TLS.Addr.Port())
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return res, err
	}
	res.Attempts = o.Targets * o.Attempts
	probe := func() error {
		if err := runTo(ctx, out, o.Probe, "run", file, "-o", "json"); err != nil {
			return err
		}
		n, size, err := countJSON(out)
		if err != nil {
			return err
		}
		if n != res.Attempts {
			return fmt.Errorf("probe run -o json: %d successful attempts, want %d", n, res.Attempts)
		}
		res.JSONBytes = size
		return nil
	}
	plain := func() error {
		return runTo(ctx, os.DevNull, o.Self, plainTLSCmd, "-addr", l.TLS.Addr.String(), "-server-name", labHost,
			"-ca", l.CAFile, "-conns", fmt.Sprint(o.Targets), "-n", fmt.Sprint(o.Attempts))
	}
	var ratios []float64
	for round := 0; round <= o.Rounds; round++ { // round 0 warms up
		runs := []*[]time.Duration{&res.ProbeRuns, &res.PlainRuns}
		fns := []func() error{probe, plain}
		walls := make([]time.Duration, 2)
		for k := range 2 {
			i := (k + round) % 2
			time.Sleep(settle)
			start := time.Now()
			if err := fns[i](); err != nil {
				return res, err
			}
			walls[i] = time.Since(start)
		}
		if round == 0 {
			continue
		}
		for i, w := range walls {
			*runs[i] = append(*runs[i], w)
		}
		ratios = append(ratios, walls[1].Seconds()/walls[0].Seconds())
		if o.Log != nil {
			fmt.Fprintf(o.Log, "process round %d: probe %.1f ms, plain %.1f ms, ratio %.3f\n", round,
				float64(walls[0])/1e6, float64(walls[1])/1e6, ratios[len(ratios)-1])
		}
	}
	res.Probe, res.Plain = medianDuration(res.ProbeRuns), medianDuration(res.PlainRuns)
	res.Ratio = medianOf(ratios)
	res.JSONBytesPerAttempt = float64(res.JSONBytes) / float64(res.Attempts)
	return res, nil
}

// runTo runs bin with args, its standard output to the file out.
func runTo(ctx context.Context, out, bin string, args ...string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// countJSON returns the successful attempts of the probe JSON document in
// the file path, and its size.
func countJSON(path string) (ok, size int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var doc probeJSON
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, 0, fmt.Errorf("probe run -o json: %w", err)
	}
	for _, t := range doc.Targets {
		for _, a := range t.Attempts {
			if a.OK {
				ok++
			}
		}
	}
	return ok, len(b), nil
}

// medianDuration is medianOf for durations.
func medianDuration(d []time.Duration) time.Duration {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = float64(x)
	}
	return time.Duration(medianOf(v))
}

// plainTLSMain is the plain program: conns × n TCP connects and TLS
// handshakes to addr, conns at once, verifying server-name against the CA,
// each closed with a close_notify as probe closes its connections.
func plainTLSMain(args []string) int {
	fs := flag.NewFlagSet(plainTLSCmd, flag.ContinueOnError)
	addr := fs.String("addr", "", "the TLS server, address:port")
	serverName := fs.String("server-name", "", "the name to send and verify")
	ca := fs.String("ca", "", "PEM file of the CA to trust")
	conns := fs.Int("conns", 1, "connections at once")
	n := fs.Int("n", 1, "handshakes per connection at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := func() error {
		roots, err := readRoots(*ca)
		if err != nil {
			return err
		}
		return parallel(*conns**n, *conns, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", *addr)
			if err != nil {
				return err
			}
			tc := tls.Client(c, &tls.Config{ServerName: *serverName, RootCAs: roots})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return fmt.Errorf("tls handshake with %s: %w", *addr, err)
			}
			return tc.Close()
		})
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, plainTLSCmd+":", err)
		return 1
	}
	return 0
}

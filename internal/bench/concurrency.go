//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/internal/lab"
)

// concurrencyHCL is the pipeline of the concurrency runs: %[1]d targets,
// one attempt each (the default), resolve (one A query to the lab's DNS
// server), connect, and TLS verified against the lab's CA on port %[5]d.
// No run block: the concurrency is the command line's.
const concurrencyHCL = `
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
  for_each = [for i in range(%[1]d) : tostring(i)]
  host     = %[4]q
  port     = %[5]d
  pipeline = pipeline.https
}
`

// concurrencyOptions describe one series of concurrency runs.
type concurrencyOptions struct {
	Name        string // the series' name in the log and the figures
	Targets     int    // targets of each probe run
	Concurrency []int  // the concurrencies compared; the first is the reference
	Rounds      int    // runs at each concurrency; each figure is the median
	// ServerDelayed probes the lab's slow TLS server, which holds its first
	// flight 40 ms as a distant server would, instead of the one that
	// answers at once.
	ServerDelayed bool
	Procs         int    // GOMAXPROCS of the probe process; 0 for its default
	Probe         string // the probe binary
	// Self, when set, is a binary of this command that serves the lab in
	// a process of its own (labCmd) instead of this one: a test binary's
	// race detector makes its servers several times slower, the bottleneck
	// instead of the probe process under study.
	Self string
	Log  io.Writer // each run's figures and the series' table; nil for none
}

// concurrencyPoint is what the runs at one concurrency measured, each
// figure the median over the rounds.
type concurrencyPoint struct {
	Concurrency int
	TLS         float64 // the run's median tls phase, ms
	TLSRatio    float64 // TLS over the reference's of the same round
	WaitShare   float64 // the probe process's summary.sched_latency.wait_share
	SchedP99    float64 // its summary.sched_latency.p99_ms
	Wall        float64 // the run's duration_ms
	Distorted   int     // rounds whose run said its timings were distorted
}

// measureConcurrency runs `probe run -o json` of Targets targets at each
// concurrency, in rounds, against a loopback lab in this process, and
// reports the phase medians and the scheduling delay probe saw at each.
// Every target must succeed.
func measureConcurrency(ctx context.Context, o concurrencyOptions) (points []concurrencyPoint, err error) {
	var at labAddrs
	if o.Self != "" {
		f, line, err := startServing(exec.Command(o.Self, labCmd), (*exec.Cmd).Start)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, f.close()) }()
		if _, err := fmt.Sscan(line, &at.dns, &at.caFile, &at.tls, &at.slowTLS); err != nil {
			return nil, fmt.Errorf("%s printed %q: %w", labCmd, line, err)
		}
	} else {
		l, err := lab.Start()
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, l.Close()) }()
		at = labAddrs{dns: l.DNS.Addr, caFile: l.CAFile, tls: l.TLS.Addr.Port(), slowTLS: l.SlowTLS.Addr.Port()}
	}
	port := at.tls
	if o.ServerDelayed {
		port = at.slowTLS
	}
	dir, err := os.MkdirTemp("", "probe-bench-concurrency-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "concurrency.hcl")
	src := fmt.Sprintf(concurrencyHCL, o.Targets, at.dns, at.caFile, labHost, port)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return nil, err
	}

	runs := make([][]concurrencyPoint, len(o.Concurrency))
	for round := 0; round <= o.Rounds; round++ { // round 0 warms up
		var ref float64
		for k := range o.Concurrency {
			// The reference runs first in every round, the others each
			// round from another one on.
			i := k
			if k > 0 {
				i = 1 + (k-1+round)%(len(o.Concurrency)-1)
			}
			p, err := concurrencyRun(ctx, o, file, o.Concurrency[i])
			if err != nil {
				return nil, err
			}
			if i == 0 {
				ref = p.TLS
			}
			p.TLSRatio = p.TLS / ref
			if o.Log != nil {
				fmt.Fprintf(o.Log, "concurrency %s round %d: concurrency %d, tls %.3f ms (x%.2f), wait share %.3f, sched p99 %.3f ms, wall %.0f ms, distorted %d\n",
					o.Name, round, p.Concurrency, p.TLS, p.TLSRatio, p.WaitShare, p.SchedP99, p.Wall, p.Distorted)
			}
			if round > 0 {
				runs[i] = append(runs[i], p)
			}
		}
	}
	for i, c := range o.Concurrency {
		p := concurrencyPoint{Concurrency: c}
		var tls, ratio, share, p99, wall []float64
		for _, r := range runs[i] {
			tls, ratio, share = append(tls, r.TLS), append(ratio, r.TLSRatio), append(share, r.WaitShare)
			p99, wall = append(p99, r.SchedP99), append(wall, r.Wall)
			p.Distorted += r.Distorted
		}
		p.TLS, p.TLSRatio, p.WaitShare = medianOf(tls), medianOf(ratio), medianOf(share)
		p.SchedP99, p.Wall = medianOf(p99), medianOf(wall)
		points = append(points, p)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "concurrency %s, medians of %d rounds:\nconcurrency  tls ms  ratio  wait share  sched p99 ms  wall ms  distorted\n", o.Name, o.Rounds)
		for _, p := range points {
			fmt.Fprintf(o.Log, "%11d  %6.2f  %5.2f  %10.3f  %12.3f  %7.0f  %d of %d\n",
				p.Concurrency, p.TLS, p.TLSRatio, p.WaitShare, p.SchedP99, p.Wall, p.Distorted, o.Rounds)
		}
	}
	return points, nil
}

// labCmd is the hidden first argument under which this command serves the
// loopback lab (labMain) for concurrency runs (concurrencyOptions.Self).
const labCmd = "lab"

// labAddrs is where a loopback lab serves what the concurrency runs use.
type labAddrs struct {
	dns          string // the DNS server's address
	caFile       string
	tls, slowTLS uint16 // the TLS servers' ports: at once, and 40 ms late
}

// labMain serves the loopback lab, prints its DNS server's address, its CA
// file and its TLS servers' ports on one line, and stops when its standard
// input closes.
func labMain() int {
	l, err := lab.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, labCmd+":", err)
		return 1
	}
	fmt.Println(l.DNS.Addr, l.CAFile, l.TLS.Addr.Port(), l.SlowTLS.Addr.Port())
	io.Copy(io.Discard, os.Stdin)
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, labCmd+":", err)
		return 1
	}
	return 0
}

// concurrencyRun runs `probe run -o json` of file at concurrency c and
// returns what it measured; TLSRatio is left to the caller.
func concurrencyRun(ctx context.Context, o concurrencyOptions, file string, c int) (concurrencyPoint, error) {
	cmd := exec.CommandContext(ctx, o.Probe, "run", file, "-o", "json", "--concurrency", strconv.Itoa(c))
	if o.Procs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.Procs))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return concurrencyPoint{}, fmt.Errorf("probe run at concurrency %d: %w\n%s", c, err, lastLines(stderr.String(), 10))
	}
	var doc report.Document
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return concurrencyPoint{}, fmt.Errorf("probe run at concurrency %d: %w", c, err)
	}
	if doc.Summary.Failed > 0 {
		return concurrencyPoint{}, fmt.Errorf("probe run at concurrency %d: %d targets failed: %v", c, doc.Summary.Failed, doc.Summary.FailuresByClass)
	}
	s := doc.Summary.SchedLatency
	p := concurrencyPoint{Concurrency: c, TLS: doc.Stats["tls"].P50MS, WaitShare: s.WaitShare, SchedP99: s.P99MS, Wall: doc.DurationMS}
	if s.Distorted {
		p.Distorted = 1
	}
	return p, nil
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// scaleHCL is the pipeline of the scale run: every target a name of its own
// under probe.test, which the lab's DNS server answers by its wildcard;
// resolve (A) and connect to the lab's TCP server. %[4]s is the list of
// names.
const scaleHCL = `
run {
  concurrency = %[1]d
  timeout     = "10s"
}

resolver "lab" {
  plugin      = "dns-miekg"
  servers     = [%[2]q]
  query_types = ["A"]
}

dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}

target "t" {
  for_each = %[4]s
  host     = "${each.value}.probe.test"
  port     = %[3]d
  pipeline = pipeline.tcp
}
`

// scaleOptions size a scale run.
type scaleOptions struct {
	Targets     int
	Concurrency int
	Probe       string // the probe binary
}

// scaleResult is what one `probe run` of many targets cost.
type scaleResult struct {
	Wall   time.Duration
	RSS    int64 // peak resident set of the probe process, bytes
	MaxFDs int   // most file descriptors it had open at once, sampled
}

// measureScale runs the probe binary once on a generated pipeline file of
// Targets targets, jsonl output thrown away, and measures its wall time,
// peak RSS and open file descriptors. Every target must succeed.
func measureScale(ctx context.Context, o scaleOptions) (res scaleResult, err error) {
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	l.DNS.AddAddr("*", netip.MustParseAddr("127.0.0.1"))

	var names strings.Builder
	names.WriteString("[\n")
	for i := range o.Targets {
		fmt.Fprintf(&names, "    \"t%06d\",\n", i)
	}
	names.WriteString("  ]")
	dir, err := os.MkdirTemp("", "probe-bench-scale-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "scale.hcl")
	src := fmt.Sprintf(scaleHCL, o.Concurrency, l.DNS.Addr, l.TCP.Addr.Port(), names.String())
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return res, err
	}

	out, err := os.Create(filepath.Join(dir, "attempts.jsonl"))
	if err != nil {
		return res, err
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, o.Probe, "run", file, "-o", "jsonl")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start probe: %w", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := countFDs(cmd.Process.Pid); err == nil {
				res.MaxFDs = max(res.MaxFDs, n)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	err = cmd.Wait()
	res.Wall = time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return res, fmt.Errorf("probe run of %d targets: %w: failures %v\n%s", o.Targets, err, failures(out.Name()), lastLines(stderr.String(), 10))
	}
	res.RSS = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	return res, nil
}

// countFDs returns how many file descriptors process pid has open.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(ents), err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failures counts the failed attempts of a jsonl output file by class.
func failures(path string) map[string]int {
	out := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	for dec := json.NewDecoder(f); ; {
		var a struct {
			Failure *struct{ Class string } `json:"failure"`
		}
		if dec.Decode(&a) != nil {
			return out
		}
		if a.Failure != nil {
			out[a.Failure.Class]++
		}
	}
}

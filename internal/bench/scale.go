//go:build linux

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// scaleHCL is the pipeline of the scale run: every target a name of its own
// under probe.test, which the lab's DNS server answers by its wildcard;
// resolve (A) and connect to the lab's TCP server. %[4]s is the target
// block's body less its pipeline: the names as a for_each list, or a
// targets file of them.
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
%[4]s
  port     = %[3]d
  pipeline = pipeline.tcp
}
`

// scaleOptions size a scale run.
type scaleOptions struct {
	Targets     int
	Concurrency int
	Probe       string // the probe binary
	// File lists the targets in a targets file (targets_file), one name a
	// line, rather than as a for_each list in the pipeline file.
	File bool
	// Output is probe run's -o: jsonl when empty.
	Output string
}

// scaleResult is what one `probe run` of many targets cost.
type scaleResult struct {
	Wall time.Duration
	// RSS is the peak resident set of the probe process, bytes (VmHWM,
	// sampled every 50 ms, the last sample its peak but for the run's
	// last 50 ms).
	RSS    int64
	MaxFDs int // most file descriptors it had open at once, sampled
}

// measureScale runs the probe binary once on a generated pipeline file of
// Targets targets, its output read and thrown away, and measures its wall
// time, peak RSS and open file descriptors. Every target must succeed:
// under jsonl, with a line each.
func measureScale(ctx context.Context, o scaleOptions) (res scaleResult, err error) {
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	l.DNS.AddAddr("*", netip.MustParseAddr("127.0.0.1"))

	dir, err := os.MkdirTemp("", "probe-bench-scale-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var names strings.Builder
	body := `  targets_file = "targets.txt"`
	if o.File {
		for i := range o.Targets {
			fmt.Fprintf(&names, "t%07d.probe.test\n", i)
		}
		if err := os.WriteFile(filepath.Join(dir, "targets.txt"), []byte(names.String()), 0o644); err != nil {
			return res, err
		}
	} else {
		names.WriteString("[\n")
		for i := range o.Targets {
			fmt.Fprintf(&names, "    \"t%06d\",\n", i)
		}
		names.WriteString("  ]")
		body = "  for_each = " + names.String() + "\n  host     = \"${each.value}.probe.test\""
	}
	file := filepath.Join(dir, "scale.hcl")
	src := fmt.Sprintf(scaleHCL, o.Concurrency, l.DNS.Addr, l.TCP.Addr.Port(), body)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return res, err
	}
	names.Reset()

	output := cmp.Or(o.Output, "jsonl")
	cmd := exec.CommandContext(ctx, o.Probe, "run", file, "-o", output)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
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
			if hwm, err := peakRSS(cmd.Process.Pid); err == nil {
				res.RSS = max(res.RSS, hwm)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	lines, failures, readErr := readAttempts(stdout)
	err = cmd.Wait()
	res.Wall = time.Since(start)
	close(done)
	wg.Wait()
	if err != nil || readErr != nil {
		return res, fmt.Errorf("probe run of %d targets: %w: failures %v\n%s", o.Targets, errors.Join(err, readErr), failures, lastLines(stderr.String(), 10))
	}
	if output == "jsonl" && lines != o.Targets {
		return res, fmt.Errorf("probe run of %d targets wrote %d lines", o.Targets, lines)
	}
	return res, nil
}

// peakRSS returns the peak resident set of process pid so far, VmHWM, in
// bytes. Not the rusage's ru_maxrss once it has exited: os/exec starts it
// with vfork, whose child runs on the parent's memory until it execs, and
// Linux keeps that memory's peak in the child's ru_maxrss, so that it
// would count this process's own size (a million names to write,
// included).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// readAttempts reads probe's output to its end: its lines, and of jsonl's
// the failed attempts' classes.
func readAttempts(r io.Reader) (lines int, failures map[string]int, err error) {
	failures = map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		if !bytes.Contains(sc.Bytes(), []byte(`"failure":{`)) {
			continue
		}
		var a struct {
			Failure *struct{ Class string } `json:"failure"`
		}
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Failure != nil {
			failures[a.Failure.Class]++
		}
	}
	return lines, failures, sc.Err()
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

// fileTargets sizes the scale1m stage.
var fileTargets = flag.Int("file-targets", 1_000_000, "targets of the scale1m stage's targets file")

// scaleFileResult is what the scale1m stage measured.
type scaleFileResult struct {
	Targets int
	// Big is the run of every target, Small of a tenth of them, both -o
	// jsonl; JSON and Table the small one's with -o json and -o table.
	Big, Small, JSON, Table scaleResult
}

// measureScaleFile runs probe over targets targets of a targets file with
// -o jsonl, and a tenth of them with -o jsonl, json and table, one after
// the other: the tenth's wall time, times ten, predicts the whole run's,
// and its peak RSS against the whole run's says whether memory grew with
// the targets; json's and table's against jsonl's what keeping every
// attempt costs.
func measureScaleFile(ctx context.Context, log io.Writer, probe string, targets int) (res scaleFileResult, err error) {
	res.Targets = targets
	small := targets / 10
	for _, run := range []struct {
		name    string
		targets int
		output  string
		res     *scaleResult
	}{
		{"jsonl", small, "jsonl", &res.Small},
		{"jsonl", targets, "jsonl", &res.Big},
		{"json", small, "json", &res.JSON},
		{"table", small, "table", &res.Table},
	} {
		*run.res, err = measureScale(ctx, scaleOptions{Targets: run.targets, Concurrency: 256, Probe: probe, File: true, Output: run.output})
		if err != nil {
			return res, fmt.Errorf("%d targets, -o %s: %w", run.targets, run.output, err)
		}
		fmt.Fprintf(log, "bench: scale1m: %d targets -o %s: %.1fs, peak RSS %.0f MB, %d fds at most\n",
			run.targets, run.output, run.res.Wall.Seconds(), float64(run.res.RSS)/(1<<20), run.res.MaxFDs)
	}
	return res, nil
}

// WallVsPredicted is the whole run's wall time over ten times the tenth's.
func (r scaleFileResult) WallVsPredicted() float64 {
	return r.Big.Wall.Seconds() / (10 * r.Small.Wall.Seconds())
}

// KBPerAttempt is what keeping every attempt cost o (JSON or Table) in
// peak RSS, per attempt, over the jsonl run of as many.
func (r scaleFileResult) KBPerAttempt(o scaleResult) float64 {
	return float64(o.RSS-r.Small.RSS) / 1024 / float64(r.Targets/10)
}

// scaleLabel names a count of targets in a figure: 1m, 100k.
func scaleLabel(n int) string {
	if n%1_000_000 == 0 {
		return strconv.Itoa(n/1_000_000) + "m"
	}
	return strconv.Itoa(n/1000) + "k"
}

// scaleFileStage is the scale1m stage: -file-targets targets (a million)
// from a targets file, -o jsonl (measureScaleFile).
func scaleFileStage() stage {
	return stage{"scale1m", func(ctx context.Context, log io.Writer, bins benchBins, add func(string, float64, int)) error {
		r, err := measureScaleFile(ctx, log, bins.probe, *fileTargets)
		if err != nil {
			return err
		}
		big, small := "scale.targets_"+scaleLabel(r.Targets)+"_", "scale.targets_"+scaleLabel(r.Targets/10)+"_file_"
		add(big+"wall_s", r.Big.Wall.Seconds(), 1)
		add(big+"per_s", float64(r.Targets)/r.Big.Wall.Seconds(), 0)
		add(big+"rss_mb", float64(r.Big.RSS)/(1<<20), 0)
		add(big+"max_fds", float64(r.Big.MaxFDs), 0)
		add(big+"wall_vs_predicted", r.WallVsPredicted(), 2)
		add(small+"wall_s", r.Small.Wall.Seconds(), 1)
		add(small+"rss_mb", float64(r.Small.RSS)/(1<<20), 0)
		add("scale.json_kb_per_attempt", r.KBPerAttempt(r.JSON), 2)
		add("scale.table_kb_per_attempt", r.KBPerAttempt(r.Table), 2)
		return nil
	}}
}

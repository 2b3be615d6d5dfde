package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// The end-to-end tests run the real probe binary, built once by TestMain,
// against one loopback lab shared by the whole package.
var (
	probeBin string
	testLab  *lab.Lab
)

// roundMS is the slack for comparing the JSON's millisecond figures, each
// rounded to the microsecond on its own.
const roundMS = 0.002

// labFile is the pipeline `probe demo` runs, seen from this directory.
const labFile = "../../examples/lab.hcl"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "probe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	probeBin = filepath.Join(dir, "probe")
	if out, err := exec.Command("go", "build", "-o", probeBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	if testLab, err = lab.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testLab.Close()
	return m.Run()
}

// result is what one run of the probe binary left behind.
type result struct {
	stdout, stderr string
	code           int
}

// proc is a running probe binary.
type proc struct {
	cmd            *exec.Cmd
	ctx            context.Context
	stdout, stderr bytes.Buffer
}

// startProbe starts the probe binary with args in a clean environment:
// PATH, HOME and env, nothing else. It is killed after 30 s.
func startProbe(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	p := &proc{cmd: exec.CommandContext(ctx, probeBin, args...), ctx: ctx}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// wait waits for the binary to exit; anything but an exit with a status
// fails the test.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	err := p.cmd.Wait()
	if p.ctx.Err() != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", p.cmd, p.ctx.Err(), &p.stderr)
	}
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", p.cmd, err)
	}
	return result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.cmd.ProcessState.ExitCode()}
}

// probe runs the probe binary and waits for it.
func probe(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return startProbe(t, env, args...).wait(t)
}

func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// labVarFlags returns a -var flag for each of the lab's variables.
func labVarFlags() []string {
	var flags []string
	vars := testLab.Vars()
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		flags = append(flags, "--var", k+"="+vars[k])
	}
	return flags
}

// labArgs returns `run examples/lab.hcl` with the lab's variables and extra.
func labArgs(extra ...string) []string {
	return slices.Concat([]string{"run", labFile}, labVarFlags(), extra)
}

// labHeader is HCL for the lab: a dns-miekg resolver asking the lab's DNS
// server with timeout, a TCP dialer, a TLS handshake trusting the lab's CA,
// and the pipelines "tcp" and "https".
func labHeader(timeout string) string {
	return fmt.Sprintf(`
resolver "lab" {
  plugin  = "dns-miekg"
  servers = [%q]
  timeout = %q
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin  = "tls"
  ca_file = %q
  alpn    = ["h2"]
}

pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}

pipeline "https" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}
`, testLab.DNS.Addr, timeout, testLab.CAFile)
}

// writeFile writes src to name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeDoc decodes the JSON document of a run, each attempt's attrs whole
// (its target's facts overlaid: report.Document.Expand).
func decodeDoc(t *testing.T, stdout string) *report.Document {
	t.Helper()
	var doc report.Document
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("decode JSON document: %v\n%s", err, stdout)
	}
	doc.Expand()
	return &doc
}

// labPort returns the port the lab variable name holds.
func labPort(t *testing.T, name string) uint16 {
	t.Helper()
	p, err := strconv.ParseUint(testLab.Vars()[name], 10, 16)
	if err != nil {
		t.Fatalf("lab variable %s: %v", name, err)
	}
	return uint16(p)
}

// msDuration converts the JSON's milliseconds back to a duration.
func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// labTarget is what examples/lab.hcl must report for one of its targets.
type labTarget struct {
	name     string
	pipeline string
	class    sdk.Class // "" for an ok target
	phase    string    // the phase that fails
	portVar  string    // the lab variable of its port
}

// labTargets are the lab's targets in the order the file declares them
// (for_each instances in key order).
var labTargets = []labTarget{
	{name: "api", pipeline: "https", portVar: "tls_port"},
	{name: "slow-dns", pipeline: "https", portVar: "tls_port"},
	{name: "slow-tls", pipeline: "https", portVar: "slow_tls_port"},
	{name: "tcp", pipeline: "tcp", portVar: "tcp_port"},
	{"broken[expired]", "https", sdk.ClassTLSCertExpired, "tls", "expired_port"},
	{"broken[nxdomain]", "https", sdk.ClassDNSNXDomain, "resolve", "tls_port"},
	{"broken[reset]", "https", sdk.ClassTCPReset, "tls", "reset_port"},
	{"broken[servfail]", "https", sdk.ClassDNSServFail, "resolve", "tls_port"},
	{"broken[silent]", "https", sdk.ClassDNSTimeout, "resolve", "tls_port"},
	{"broken[untrusted]", "https", sdk.ClassTLSCertUntrusted, "tls", "untrusted_port"},
	{"broken[wrongname]", "https", sdk.ClassTLSCertNameMismatch, "tls", "wrongname_port"},
	{"refused", "tcp", sdk.ClassTCPRefused, "connect", "refused_port"},
}

// pipelinePhases are the phases of each lab pipeline, in order.
var pipelinePhases = map[string][]string{
	"tcp":   {"resolve", "connect"},
	"https": {"resolve", "connect", "tls"},
	// The pipelines `probe test` implies.
	"implied http":  {"resolve", "connect", "http"},
	"implied https": {"resolve", "connect", "tls", "http"},
}

// labBounds are the durations in ms that the lab imposes on some phases, by
// target and phase: every attempt takes at least the first figure, and the
// median attempt less than the second (on a busy machine a single cold
// attempt may take longer).
var labBounds = map[string]map[string][2]float64{
	"api":            {"resolve": {0, 30}},
	"slow-dns":       {"resolve": {30, 30 + 25}},    // the DNS server's delay
	"slow-tls":       {"tls": {40, 40 + 25}},        // the TLS server's delay
	"broken[silent]": {"resolve": {300, 300 + 200}}, // the lab resolver's timeout
}

func TestRunLabJSON(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, labArgs("-o", "json")...)
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	if doc.File != labFile || doc.Interrupted {
		t.Errorf("file %q, interrupted %v; want %q, false", doc.File, doc.Interrupted, labFile)
	}
	var names []string
	for _, tj := range doc.Targets {
		names = append(names, tj.Name)
	}
	var wantNames []string
	for _, lt := range labTargets {
		wantNames = append(wantNames, lt.name)
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("targets (-want +got):\n%s", diff)
	}

	var all []report.AttemptJSON
	for i, lt := range labTargets {
		t.Run(lt.name, func(t *testing.T) { checkLabTarget(t, lt, doc.Targets[i]) })
		all = append(all, doc.Targets[i].Attempts...)
	}
	t.Run("run stats", func(t *testing.T) { checkStats(t, doc.Stats, all) })
	t.Run("summary", func(t *testing.T) {
		want := report.SummaryCountsJSON{Targets: 12, OK: 4, Failed: 8, FailuresByClass: map[sdk.Class]int{}}
		for _, lt := range labTargets[4:] {
			want.FailuresByClass[lt.class] = 1
		}
		want.SchedLatency = doc.Summary.SchedLatency // measured; TestSchedLatency checks it
		if diff := cmp.Diff(want, doc.Summary); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
		if len(all) != 4*3+8 {
			t.Errorf("%d attempts, want %d", len(all), 4*3+8)
		}
		// The run lasts at least as long as its slowest attempt, the
		// silent DNS server's 300 ms timeout.
		if doc.DurationMS < 300 || doc.DurationMS > 2000 {
			t.Errorf("duration_ms %.3f, want in [300, 2000)", doc.DurationMS)
		}
	})
	t.Run("overhead", func(t *testing.T) {
		var overheads []float64
		for _, a := range all {
			overheads = append(overheads, a.OverheadMS)
		}
		slices.Sort(overheads)
		if med := overheads[len(overheads)/2]; med >= 1 {
			t.Errorf("median overhead %.3f ms, want < 1 ms; all: %v", med, overheads)
		}
	})
	t.Run("attrs", func(t *testing.T) { checkAPIAttrs(t, doc.Targets[0]) })
	t.Run("facts", func(t *testing.T) {
		var raw report.Document
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
			t.Fatal(err)
		}
		checkAPIFacts(t, raw.Targets[0])
	})
}

// checkAPIFacts checks that the healthy https target's document states
// once what its three attempts share (the certificate, the resolution, the
// address dialed) and in each attempt what differs (the local address).
func checkAPIFacts(t *testing.T, api report.TargetJSON) {
	t.Helper()
	for phase, keys := range map[string][]string{
		"resolve": {"addresses", "rcode", "server"}, "connect": {"remote"},
		"tls": {"version", "alpn", "verified", "server_name", "cert_not_after", "cert_subject", "cert_sans"},
	} {
		for _, k := range keys {
			if _, ok := api.Facts[phase][k]; !ok {
				t.Errorf("facts[%q] lack %q: %v", phase, k, api.Facts[phase])
			}
		}
	}
	if _, ok := api.Facts["connect"]["local"]; ok {
		t.Errorf("facts[connect] hold the local address, which differs from attempt to attempt: %v", api.Facts["connect"])
	}
	for _, a := range api.Attempts {
		for _, p := range a.Phases {
			for k := range p.Attrs {
				if _, ok := api.Facts[p.Phase][k]; ok {
					t.Errorf("attempt %d: %s attrs repeat the fact %q", a.Seq, p.Phase, k)
				}
			}
		}
		if conn := findPhase(a, "connect"); conn == nil || conn.Attrs["local"] == nil {
			t.Errorf("attempt %d: no connect phase with its local address", a.Seq)
		}
	}
}

// checkLabTarget checks one target of the lab run against its expectation.
func checkLabTarget(t *testing.T, want labTarget, got report.TargetJSON) {
	t.Helper()
	wantAttempts, wantByClass := 3, map[sdk.Class]int{}
	if want.class != "" {
		wantAttempts, wantByClass[want.class] = 1, 1
	}
	wantPort := labPort(t, want.portVar)
	if got.Pipeline != want.pipeline || got.OK != (want.class == "") || got.Port != wantPort {
		t.Errorf("pipeline %q, ok %v, port %d; want %q, %v, %d", got.Pipeline, got.OK, got.Port, want.pipeline, want.class == "", wantPort)
	}
	if diff := cmp.Diff(wantByClass, got.FailuresByClass); diff != "" {
		t.Errorf("failures_by_class (-want +got):\n%s", diff)
	}
	if len(got.Attempts) != wantAttempts {
		t.Fatalf("%d attempts, want %d", len(got.Attempts), wantAttempts)
	}
	for i, a := range got.Attempts {
		if a.Seq != i+1 {
			t.Errorf("attempt %d: seq %d", i+1, a.Seq)
		}
		checkAttempt(t, a, pipelinePhases[want.pipeline])
		switch {
		case want.class == "" && !a.OK:
			t.Errorf("attempt %d failed: %+v", a.Seq, a.Failure)
		case want.class != "" && (a.Failure == nil || a.Failure.Class != want.class || a.Failure.Phase != want.phase):
			t.Errorf("attempt %d: failure %+v, want class %s in phase %s", a.Seq, a.Failure, want.class, want.phase)
		}
		wantAddr := fmt.Sprintf("127.0.0.1:%d", wantPort)
		resolved := a.Phases[0].OK
		if resolved != (a.Address != nil) || resolved && *a.Address != wantAddr {
			t.Errorf("attempt %d: address %v with resolve ok %v; want %s when resolved, null otherwise", a.Seq, a.Address, resolved, wantAddr)
		}
	}
	for name, b := range labBounds[want.name] {
		checkBounds(t, got.Attempts, name, b[0], b[1])
	}
	checkStats(t, got.Stats, got.Attempts)
}

// checkBounds checks that phase took at least lo ms in every attempt and
// less than hi ms in the median one.
func checkBounds(t *testing.T, attempts []report.AttemptJSON, phase string, lo, hi float64) {
	t.Helper()
	var ds []float64
	for _, a := range attempts {
		if p := findPhase(a, phase); p != nil {
			ds = append(ds, p.DurationMS)
		}
	}
	if len(ds) == 0 || len(ds) != len(attempts) {
		t.Errorf("%s in %d of %d attempts, want all", phase, len(ds), len(attempts))
		return
	}
	slices.Sort(ds)
	if ds[0] < lo || ds[len(ds)/2] >= hi {
		t.Errorf("%s took %v ms, want each >= %g and the median < %g", phase, ds, lo, hi)
	}
}

func findPhase(a report.AttemptJSON, name string) *report.PhaseJSON {
	for i := range a.Phases {
		if a.Phases[i].Phase == name {
			return &a.Phases[i]
		}
	}
	return nil
}

// checkAttempt checks what holds for every attempt: its phases follow the
// pipeline's order and stop at the failed one, they are monotone and do not
// overlap, and their durations plus the overhead make the total.
func checkAttempt(t *testing.T, a report.AttemptJSON, pipeline []string) {
	t.Helper()
	n := len(a.Phases)
	if n == 0 || n > len(pipeline) || a.OK && n != len(pipeline) {
		t.Errorf("attempt %d: %d phases (ok %v), want 1 to %d and all when ok", a.Seq, n, a.OK, len(pipeline))
		return
	}
	var sum, end float64
	for i, p := range a.Phases {
		if p.Phase != pipeline[i] {
			t.Errorf("attempt %d: phase %d is %q, want %q", a.Seq, i, p.Phase, pipeline[i])
		}
		if p.StartMS < end-roundMS {
			t.Errorf("attempt %d: %s starts at %.3f ms, before the previous phase ended at %.3f ms", a.Seq, p.Phase, p.StartMS, end)
		}
		if p.DurationMS < 0 {
			t.Errorf("attempt %d: %s has a negative duration %.3f ms", a.Seq, p.Phase, p.DurationMS)
		}
		if last := i == n-1; p.OK != (!last || a.OK) {
			t.Errorf("attempt %d: %s ok %v, want %v", a.Seq, p.Phase, p.OK, !last || a.OK)
		}
		if p.Attrs == nil {
			t.Errorf("attempt %d: %s has null attrs, want an object", a.Seq, p.Phase)
		}
		sum += p.DurationMS
		end = p.StartMS + p.DurationMS
	}
	if a.Phases[0].StartMS < 0 {
		t.Errorf("attempt %d: first phase starts at %.3f ms", a.Seq, a.Phases[0].StartMS)
	}
	if end > a.TotalMS+roundMS {
		t.Errorf("attempt %d: last phase ends at %.3f ms, after the total %.3f ms", a.Seq, end, a.TotalMS)
	}
	if a.OverheadMS < 0 || math.Abs(sum+a.OverheadMS-a.TotalMS) > 0.01 {
		t.Errorf("attempt %d: phases %.3f ms + overhead %.3f ms != total %.3f ms", a.Seq, sum, a.OverheadMS, a.TotalMS)
	}
	if a.OK != (a.Failure == nil) {
		t.Errorf("attempt %d: ok %v with failure %+v", a.Seq, a.OK, a.Failure)
	}
	if f, last := a.Failure, a.Phases[n-1]; f != nil {
		if f.Phase != last.Phase || f.Class == "" || f.Message == "" {
			t.Errorf("attempt %d: failure %+v, want one in phase %s with a class and a message", a.Seq, f, last.Phase)
		}
		if last.DurationMS <= 0 {
			t.Errorf("attempt %d: failed phase %s took %.3f ms, want it measured", a.Seq, last.Phase, last.DurationMS)
		}
	}
}

// checkStats checks per-phase statistics against the attempts they sum up:
// counts exactly, min and max equal to the extremes of the successful
// samples, the mean within rounding, percentiles in order.
func checkStats(t *testing.T, stats map[string]report.SummaryJSON, attempts []report.AttemptJSON) {
	t.Helper()
	want := map[string]*report.SummaryJSON{}
	oks := map[string][]float64{}
	add := func(name string, d float64, ok bool) {
		s := want[name]
		if s == nil {
			s = &report.SummaryJSON{}
			want[name] = s
		}
		s.Count++
		if !ok {
			s.Failed++
			return
		}
		s.OK++
		oks[name] = append(oks[name], d)
	}
	for _, a := range attempts {
		for _, p := range a.Phases {
			add(p.Phase, p.DurationMS, p.OK)
		}
		add("total", a.TotalMS, a.OK)
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(stats))); diff != "" {
		t.Errorf("stats keys (-want +got):\n%s", diff)
	}
	for name, w := range want {
		s := stats[name]
		if s.Count != w.Count || s.OK != w.OK || s.Failed != w.Failed {
			t.Errorf("stats[%s]: count/ok/failed %d/%d/%d, want %d/%d/%d", name, s.Count, s.OK, s.Failed, w.Count, w.OK, w.Failed)
		}
		d := oks[name]
		if len(d) == 0 {
			if s.MinMS != 0 || s.MaxMS != 0 || s.MeanMS != 0 || s.P50MS != 0 {
				t.Errorf("stats[%s]: timings %+v with no successful sample, want zeros", name, s)
			}
			continue
		}
		var mean float64
		for _, v := range d {
			mean += v / float64(len(d))
		}
		if s.MinMS != slices.Min(d) || s.MaxMS != slices.Max(d) || math.Abs(s.MeanMS-mean) > roundMS {
			t.Errorf("stats[%s]: min/mean/max %.3f/%.3f/%.3f, want %.3f/%.3f/%.3f", name, s.MinMS, s.MeanMS, s.MaxMS, slices.Min(d), mean, slices.Max(d))
		}
		if !(s.MinMS <= s.P50MS && s.P50MS <= s.P90MS && s.P90MS <= s.P99MS && s.P99MS <= s.MaxMS) || s.StddevMS < 0 {
			t.Errorf("stats[%s]: want min <= p50 <= p90 <= p99 <= max and stddev >= 0: %+v", name, s)
		}
	}
}

// checkAPIAttrs checks the facts the healthy https target's phases report.
func checkAPIAttrs(t *testing.T, api report.TargetJSON) {
	t.Helper()
	for _, a := range api.Attempts {
		if len(a.Phases) != 3 || a.Address == nil {
			t.Fatalf("attempt %d: %d phases, address %v", a.Seq, len(a.Phases), a.Address)
		}
		res, conn, tls := a.Phases[0], a.Phases[1], a.Phases[2]
		if res.Plugin != "dns-miekg" || conn.Plugin != "dial-tcp" || tls.Plugin != "tls" {
			t.Errorf("attempt %d: plugins %s, %s, %s", a.Seq, res.Plugin, conn.Plugin, tls.Plugin)
		}
		checkAttrs(t, res, map[string]any{"server": testLab.DNS.Addr, "rcode": "NOERROR", "addresses": []any{"127.0.0.1"}})
		checkAttrs(t, conn, map[string]any{"remote": *a.Address})
		if local, _ := conn.Attrs["local"].(string); !strings.HasPrefix(local, "127.0.0.1:") || local == *a.Address {
			t.Errorf("attempt %d: connect local = %q, want another 127.0.0.1 address", a.Seq, local)
		}
		checkAttrs(t, tls, map[string]any{"version": "TLS 1.3", "alpn": "h2", "verified": true, "server_name": "api.probe.test"})
		s, _ := tls.Attrs["cert_not_after"].(string)
		if notAfter, err := time.Parse(time.RFC3339, s); err != nil || !notAfter.After(time.Now()) {
			t.Errorf("attempt %d: cert_not_after %q, want an RFC 3339 time in the future (%v)", a.Seq, s, err)
		}
	}
}

// checkAttrs checks that the phase's attrs include want.
func checkAttrs(t *testing.T, p report.PhaseJSON, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !cmp.Equal(p.Attrs[k], v) {
			t.Errorf("%s attrs[%q] = %#v, want %#v; all: %v", p.Phase, k, p.Attrs[k], v, p.Attrs)
		}
	}
}

func TestRunLabJSONLines(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, labArgs("-o", "jsonl")...)
	wantExit(t, r, exitFailed)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4*3+8 {
		t.Fatalf("%d lines, want one per attempt, %d:\n%s", len(lines), 4*3+8, r.stdout)
	}
	pipelines := map[string]string{}
	for _, lt := range labTargets {
		pipelines[lt.name] = lt.pipeline
	}
	seqs := map[string][]int{}
	for _, line := range lines {
		var a report.AttemptJSON
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
		p, ok := pipelines[a.Target]
		if !ok {
			t.Errorf("line with unknown target %q: %s", a.Target, line)
			continue
		}
		seqs[a.Target] = append(seqs[a.Target], a.Seq)
		checkAttempt(t, a, pipelinePhases[p])
	}
	for _, lt := range labTargets {
		want := []int{1}
		if lt.class == "" {
			want = []int{1, 2, 3}
		}
		if diff := cmp.Diff(want, seqs[lt.name]); diff != "" {
			t.Errorf("%s: seqs in output order (-want +got):\n%s", lt.name, diff)
		}
	}
}

func TestRunLabTable(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, labArgs()...)
	wantExit(t, r, exitFailed)
	rows := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if name, _, ok := strings.Cut(line, " "); ok {
			rows[name] = line
		}
	}
	for _, lt := range labTargets {
		row, ok := rows[lt.name]
		fields := strings.Fields(row)
		switch {
		case !ok:
			t.Errorf("no row for %s in:\n%s", lt.name, r.stdout)
		case lt.class == "" && fields[2] != "3/3":
			t.Errorf("row %q, want 3/3 ok", row)
		case lt.class != "" && (fields[2] != "0/1" || fields[len(fields)-1] != string(lt.class)+"×1"):
			t.Errorf("row %q, want 0/1 ok and %s×1", row, lt.class)
		}
	}
	if !strings.Contains(r.stdout, "\n12 targets: 4 ok, 8 failed") {
		t.Errorf("no summary line in:\n%s", r.stdout)
	}
}

func TestRunSequential(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, labArgs("-o", "json", "--sequential", "--attempts", "1")...)
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	if len(doc.Targets) != len(labTargets) {
		t.Fatalf("%d targets, want %d", len(doc.Targets), len(labTargets))
	}
	var prevEnd time.Time
	for i, tj := range doc.Targets {
		lt := labTargets[i]
		if tj.Name != lt.name || len(tj.Attempts) != 1 || tj.OK != (lt.class == "") {
			t.Errorf("target %s: %d attempts, ok %v; want %s with 1 attempt, ok %v", tj.Name, len(tj.Attempts), tj.OK, lt.name, lt.class == "")
			continue
		}
		a := tj.Attempts[0]
		checkAttempt(t, a, pipelinePhases[lt.pipeline])
		// One target after another: each starts after the previous ended
		// (wall clock, so allow 0.1 ms).
		if a.StartedAt.Before(prevEnd.Add(-100 * time.Microsecond)) {
			t.Errorf("%s started at %v, before the previous target ended at %v", tj.Name, a.StartedAt, prevEnd)
		}
		prevEnd = a.StartedAt.Add(msDuration(a.TotalMS))
	}
}

// TestSchedule checks concurrency, --sequential and interval with delays
// the lab makes: six lookups of slow.probe.test take 30 ms each.
func TestSchedule(t *testing.T) {
	t.Parallel()
	six := writeFile(t, "six.hcl", labHeader("2s")+fmt.Sprintf(`
run {
  concurrency = 6
}

target "slow" {
  for_each = ["a", "b", "c", "d", "e", "f"]
  host     = "slow.probe.test"
  port     = %d
  pipeline = pipeline.tcp
}
`, testLab.TCP.Addr.Port()))
	interval := writeFile(t, "interval.hcl", labHeader("2s")+fmt.Sprintf(`
run {
  attempts = 3
  interval = "100ms"
}

target "api" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, doc *report.Document)
	}{
		{"parallel", []string{"run", six, "-o", "json"}, func(t *testing.T, doc *report.Document) {
			if doc.DurationMS >= 100 {
				t.Errorf("6 targets at concurrency 6 took %.3f ms, want well under 6×30 ms (< 100 ms)", doc.DurationMS)
			}
		}},
		{"sequential", []string{"run", six, "-o", "json", "--sequential"}, func(t *testing.T, doc *report.Document) {
			if doc.DurationMS < 6*30 {
				t.Errorf("6 targets one after another took %.3f ms, want >= 6×30 ms", doc.DurationMS)
			}
		}},
		{"interval", []string{"run", interval, "-o", "json"}, func(t *testing.T, doc *report.Document) {
			as := doc.Targets[0].Attempts
			if len(as) != 3 {
				t.Fatalf("%d attempts, want 3", len(as))
			}
			for i := 1; i < len(as); i++ {
				if gap := as[i].StartedAt.Sub(as[i-1].StartedAt); gap < 100*time.Millisecond || gap >= 150*time.Millisecond {
					t.Errorf("attempt %d started %v after attempt %d, want in [100ms, 150ms)", i+1, gap, i)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, tt.args...)
			wantExit(t, r, exitOK)
			doc := decodeDoc(t, r.stdout)
			for _, tj := range doc.Targets {
				for _, a := range tj.Attempts {
					checkAttempt(t, a, pipelinePhases[tj.Pipeline])
					if p := findPhase(a, "resolve"); tj.Host == "slow.probe.test" && (p == nil || p.DurationMS < 30) {
						t.Errorf("%s: resolve %+v, want >= 30 ms", tj.Name, p)
					}
				}
			}
			tt.check(t, doc)
		})
	}
}

// TestRunTimeout checks that the attempt's deadline, not the resolver's own
// timeout, ends a lookup that gets no answer.
func TestRunTimeout(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "timeout.hcl", labHeader("5s")+fmt.Sprintf(`
run {
  timeout = "150ms"
}

target "silent" {
  host     = "silent.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))
	r := probe(t, nil, "run", file, "-o", "json")
	wantExit(t, r, exitFailed)
	a := decodeDoc(t, r.stdout).Targets[0].Attempts[0]
	checkAttempt(t, a, pipelinePhases["https"])
	if a.Failure == nil || a.Failure.Class != sdk.ClassDNSTimeout || len(a.Phases) != 1 {
		t.Fatalf("failure %+v with %d phases, want dns.timeout in resolve", a.Failure, len(a.Phases))
	}
	// The deadline runs from the attempt's start, so resolve ends at it: it
	// began start_ms in (a few µs, more under the race detector and load).
	p := a.Phases[0]
	if end := p.StartMS + p.DurationMS; end < 150-0.01 || end >= 250 || p.StartMS > 5 {
		t.Errorf("resolve ran from %.3f ms for %.3f ms, want it to end at the attempt's 150 ms timeout, in [150, 250)", p.StartMS, p.DurationMS)
	}
	if a.TotalMS < 150-0.01 {
		t.Errorf("attempt took %.3f ms, want at least its 150 ms timeout", a.TotalMS)
	}
}

// errorFixtures are broken pipeline files; each line that must be reported
// ends with "# ERROR: <summary>".
var errorFixtures = []struct {
	name   string
	src    string
	detail []string
}{
	{
		name: "misspelt attribute",
		src: `resolver "lab" { # ERROR: Missing required argument
  plugin = "dns-miekg"
  servr  = ["127.0.0.1:53"] # ERROR: Unsupported argument
}

dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
`,
		detail: []string{`An argument named "servr" is not expected here. Did you mean "servers"?`},
	},
	{
		name: "unknown plugin",
		src: `resolver "lab" {
  plugin  = "dns-miekk" # ERROR: Unknown plugin
  servers = ["127.0.0.1:53"]
}

dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
`,
		detail: []string{`There is no plugin named "dns-miekk".`, `Did you mean "dns-miekg"?`},
	},
	{
		name: "undeclared resolver",
		src: `resolver "lab" {
  plugin  = "dns-miekg"
  servers = ["127.0.0.1:53"]
}

dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.lba] # ERROR: Reference to undeclared resolver
  dialer    = dialer.tcp
}
`,
		detail: []string{`There is no resolver block named "lba" in this file. Did you mean "lab"?`},
	},
	{
		name: "several errors",
		src: `variable "port" {
  type    = number
  default = "http" # ERROR: Invalid value for variable
}

resolver "lab" {
  plugin  = "dns-miekg"
  servers = ["127.0.0.1:53"]
  timeout = "soon" # ERROR: Invalid duration
}

dialer "tcp" { plugin = "dial-tpc" } # ERROR: Unknown plugin

pipeline "tcp" {
  resolvers = [resolver.lab, resolver.system] # ERROR: Reference to undeclared resolver
  dialer    = dialer.tcp
}

target "a" {
  host     = "api.probe.test"
  port     = 70000 # ERROR: Invalid port
  pipeline = pipeline.tpc # ERROR: Reference to undeclared pipeline
}
`,
	},
}

// fixtureErrors returns the line number and summary of each "# ERROR:"
// marker in src.
func fixtureErrors(src string) (lines []int, summaries []string) {
	for i, line := range strings.Split(src, "\n") {
		if _, summary, ok := strings.Cut(line, "# ERROR: "); ok {
			lines, summaries = append(lines, i+1), append(summaries, summary)
		}
	}
	return lines, summaries
}

func TestValidate(t *testing.T) {
	t.Parallel()
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, slices.Concat([]string{"validate", labFile}, labVarFlags())...)
		wantExit(t, r, exitOK)
		if want := labFile + " is valid: 2 pipelines, 12 targets.\n"; r.stdout != want || r.stderr != "" {
			t.Errorf("stdout %q, stderr %q; want %q and nothing", r.stdout, r.stderr, want)
		}
	})
	for _, fx := range errorFixtures {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			file := writeFile(t, "broken.hcl", fx.src)
			lines, summaries := fixtureErrors(fx.src)
			src := strings.Split(fx.src, "\n")
			for _, args := range [][]string{{"validate", file}, {"run", file, "-o", "json"}} {
				cmd := args[0]
				r := probe(t, nil, args...)
				wantExit(t, r, exitUsage)
				if r.stdout != "" {
					t.Errorf("%s printed on stdout:\n%s", cmd, r.stdout)
				}
				var got []string
				for _, l := range strings.Split(r.stderr, "\n") {
					if s, ok := strings.CutPrefix(l, "Error: "); ok {
						got = append(got, s)
					}
				}
				if diff := cmp.Diff(slices.Sorted(slices.Values(summaries)), slices.Sorted(slices.Values(got))); diff != "" {
					t.Errorf("%s: error summaries (-want +got):\n%s\nstderr:\n%s", cmd, diff, r.stderr)
				}
				for i, n := range lines {
					for _, want := range []string{
						fmt.Sprintf("Error: %s\n\n  on %s line %d", summaries[i], file, n),
						fmt.Sprintf("%d: %s\n", n, src[n-1]),
					} {
						if !strings.Contains(r.stderr, want) {
							t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, r.stderr)
						}
					}
				}
				for _, want := range fx.detail {
					if !strings.Contains(strings.ReplaceAll(r.stderr, "\n", " "), want) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, r.stderr)
					}
				}
			}
		})
	}
}

func TestVariables(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "vars.hcl", labHeader("2s")+`
variable "host" {
  default = "default.probe.test"
}

variable "port" {
  type    = number
  default = 1001
}

target "var" {
  host     = var.host
  port     = var.port
  pipeline = pipeline.tcp
}

target "env" {
  host     = env("E2E_HOST")
  port     = 2001
  pipeline = pipeline.tcp
}
`)
	varFile := writeFile(t, "vars.probevars", "host = \"file.probe.test\"\nport = 1003\n")
	env := []string{"PROBE_VAR_host=env.probe.test", "PROBE_VAR_port=1002"}
	tests := []struct {
		name string
		env  []string
		args []string
		host string
		port uint16
	}{
		{"default", nil, nil, "default.probe.test", 1001},
		{"PROBE_VAR_", env, nil, "env.probe.test", 1002},
		{"-var-file over PROBE_VAR_", env, []string{"--var-file", varFile}, "file.probe.test", 1003},
		{"-var over PROBE_VAR_", env, []string{"--var", "host=flag.probe.test"}, "flag.probe.test", 1002},
		{"-var over -var-file", nil, []string{"--var-file", varFile, "--var", "port=1004"}, "file.probe.test", 1004},
		{"all", env, []string{"--var", "host=flag.probe.test", "--var-file", varFile, "--var", "port=1004"}, "flag.probe.test", 1004},
		// The documented Terraform spelling, single dash.
		{"-var and -var-file", nil, []string{"-var-file", varFile, "-var", "port=1005", "-var=host=flag.probe.test"}, "flag.probe.test", 1005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"run", file, "-o", "json"}, tt.args...)
			r := probe(t, append(tt.env, "E2E_HOST=envfunc.probe.test"), args...)
			wantExit(t, r, exitFailed) // nothing answers for these names
			doc := decodeDoc(t, r.stdout)
			type hostPort struct {
				Name, Host string
				Port       uint16
			}
			var got []hostPort
			for _, tj := range doc.Targets {
				got = append(got, hostPort{tj.Name, tj.Host, tj.Port})
			}
			want := []hostPort{{"var", tt.host, tt.port}, {"env", "envfunc.probe.test", 2001}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeTargets(t *testing.T) {
	t.Parallel()
	tcpPort, tlsPort := testLab.TCP.Addr.Port(), testLab.TLS.Addr.Port()
	file := writeFile(t, "env.hcl", labHeader("2s")+fmt.Sprintf(`
target "own" {
  host     = "tcp.probe.test"
  port     = %d
  pipeline = pipeline.tcp
}
`, tcpPort))
	t.Run("added", func(t *testing.T) {
		t.Parallel()
		env := fmt.Sprintf("PROBE_TARGETS=127.0.0.1:%d:tcp, api.probe.test:%d:https", tcpPort, tlsPort)
		r := probe(t, []string{env}, "run", file, "-o", "json")
		wantExit(t, r, exitOK)
		doc := decodeDoc(t, r.stdout)
		type target struct {
			Name, Host, Pipeline string
			Port                 uint16
			OK                   bool
			Phases               int
		}
		var got []target
		for _, tj := range doc.Targets {
			tg := target{Name: tj.Name, Host: tj.Host, Pipeline: tj.Pipeline, Port: tj.Port, OK: tj.OK}
			if len(tj.Attempts) == 1 {
				tg.Phases = len(tj.Attempts[0].Phases)
				checkAttempt(t, tj.Attempts[0], pipelinePhases[tj.Pipeline])
			}
			got = append(got, tg)
		}
		want := []target{
			{"own", "tcp.probe.test", "tcp", tcpPort, true, 2},
			{fmt.Sprintf("127.0.0.1:%d:tcp", tcpPort), "127.0.0.1", "tcp", tcpPort, true, 2},
			{fmt.Sprintf("api.probe.test:%d:https", tlsPort), "api.probe.test", "https", tlsPort, true, 3},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("targets (-want +got):\n%s", diff)
		}
		// The file's https pipeline asks the lab's DNS server and trusts
		// the lab's CA: the implied one would do neither.
		if tj := doc.Targets[2]; len(tj.Attempts) == 1 && len(tj.Attempts[0].Phases) == 3 {
			checkAttrs(t, tj.Attempts[0].Phases[0], map[string]any{"server": testLab.DNS.Addr})
			checkAttrs(t, tj.Attempts[0].Phases[2], map[string]any{"verified": true})
		}
	})
	for _, bad := range []string{"api.probe.test", "api.probe.test:70000:tcp", "api.probe.test:443:gopher", "[::1:443"} {
		t.Run("malformed "+bad, func(t *testing.T) {
			t.Parallel()
			r := probe(t, []string{"PROBE_TARGETS=" + bad}, "run", file, "-o", "json")
			wantExit(t, r, exitUsage)
			if r.stdout != "" || !strings.Contains(r.stderr, "PROBE_TARGETS") {
				t.Errorf("stdout %q, stderr %q; want nothing and an error naming PROBE_TARGETS", r.stdout, r.stderr)
			}
		})
	}
}

func TestTestCommand(t *testing.T) {
	t.Parallel()
	vars := testLab.Vars()
	t.Run("waterfall", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, "test", "127.0.0.1", vars["tls_port"], "https", "--ca-file", testLab.CAFile, "--sni", "api.probe.test")
		wantExit(t, r, exitOK)
		// A line per phase, "resolve  dns-system  │███  │  0.21ms", then
		// "total  1.66ms  (overhead 0.05ms)".
		durations := map[string]string{}
		for _, line := range strings.Split(r.stdout, "\n") {
			switch f := strings.Fields(line); {
			case len(f) >= 2 && f[0] == "total":
				durations[f[0]] = f[1]
			case len(f) >= 4 && slices.Contains(pipelinePhases["implied https"], f[0]):
				durations[f[0]] = f[len(f)-1]
			}
		}
		for _, phase := range []string{"resolve", "connect", "tls", "http", "total"} {
			ms, ok := strings.CutSuffix(durations[phase], "ms")
			if _, err := strconv.ParseFloat(ms, 64); !ok || err != nil {
				t.Errorf("no %s line with a duration in the waterfall:\n%s", phase, r.stdout)
			}
		}
		for _, attr := range []string{"verified = true", "alpn = h2", "status = 200", "version = HTTP/2.0"} {
			if !strings.Contains(r.stdout, attr) {
				t.Errorf("waterfall lacks the attribute %q:\n%s", attr, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\x1b[") {
			t.Errorf("colour in a pipe:\n%s", r.stdout)
		}
	})
	t.Run("slow tls json", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, "test", "api.probe.test", vars["slow_tls_port"], "https", "--dns", testLab.DNS.Addr,
			"--ca-file", testLab.CAFile, "-n", "3", "-o", "json")
		wantExit(t, r, exitOK)
		doc := decodeDoc(t, r.stdout)
		if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 3 {
			t.Fatalf("want one target with 3 attempts:\n%s", r.stdout)
		}
		for _, a := range doc.Targets[0].Attempts {
			checkAttempt(t, a, pipelinePhases["implied https"])
			checkAttrs(t, a.Phases[0], map[string]any{"server": testLab.DNS.Addr})
			checkAttrs(t, a.Phases[3], map[string]any{"status": 200.0, "version": "HTTP/2.0"})
		}
		checkBounds(t, doc.Targets[0].Attempts, "tls", 40, 40+25)
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, "test", "127.0.0.1", vars["refused_port"], "tcp")
		wantExit(t, r, exitFailed)
		if !strings.Contains(r.stdout, "tcp.refused") {
			t.Errorf("output lacks tcp.refused:\n%s", r.stdout)
		}
	})
}

func TestPlugins(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, "plugins")
	wantExit(t, r, exitOK)
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		names = append(names, strings.Fields(line)[0])
	}
	if diff := cmp.Diff([]string{"dial-http-connect", "dial-socks5", "dial-tcp", "dial-udp", "dns-miekg", "dns-system", "grpc-health", "http", "http3", "icmp", "quic", "ssh", "starttls", "tls", "udp-payload"}, names); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	r = probe(t, nil, "plugins", "show", "dns-miekg")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "  servers = [...]") || !regexp.MustCompile(`(?m)^  servers +list of string +\(required\)`).MatchString(r.stdout) {
		t.Errorf("show dns-miekg lacks the servers attribute:\n%s", r.stdout)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, "demo")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "\n12 targets: 4 ok, 8 failed") {
		t.Errorf("no summary line in:\n%s", r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"run without file", []string{"run"}, "no targets: give a pipeline FILE, or set PROBE_TARGETS"},
		{"unknown output", labArgs("-o", "yaml"), `unknown output format "yaml"`},
		{"unknown flag", []string{"run", labFile, "--bogus"}, "unknown flag: --bogus"},
		{"missing file", []string{"run", "nonexistent.hcl"}, "Error: Failed to read file"},
		{"undeclared -var", labArgs("--var", "nope=1"), "Error: Value for undeclared variable"},
		{"bad port", []string{"test", "127.0.0.1", "http"}, `port "http" is not a number`},
		{"unknown proto", []string{"test", "127.0.0.1", "80", "gopher"}, `unknown protocol "gopher"`},
		{"unknown plugin", []string{"plugins", "show", "nope"}, `no plugin named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantUsage(t, tt.args, tt.stderr)
		})
	}
}

// wantUsage runs probe with args and wants a usage error: exit 2, nothing
// on stdout, and stderr saying want.
func wantUsage(t *testing.T, args []string, want string) {
	t.Helper()
	r := probe(t, nil, args...)
	wantExit(t, r, exitUsage)
	if r.stdout != "" || !strings.Contains(r.stderr, want) {
		t.Errorf("stdout %q, stderr %q; want nothing and %q", r.stdout, r.stderr, want)
	}
}

// TestInterrupt sends SIGINT while one target waits on a silent DNS server:
// probe stops at once, prints what finished, counts the waiting target as
// interrupted, and exits 130.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "stuck.hcl", labHeader("10s")+fmt.Sprintf(`
run {
  timeout = "10s"
}

target "fast" {
  host     = "api.probe.test"
  port     = %[1]d
  pipeline = pipeline.https
  attempts = 1
}

target "stuck" {
  host     = "silent.probe.test"
  port     = %[1]d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))
	start := time.Now()
	p := startProbe(t, nil, "run", file, "-o", "json")
	time.Sleep(500 * time.Millisecond)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	elapsed := time.Since(start)
	wantExit(t, r, exitInterrupted)
	if elapsed > 3*time.Second {
		t.Errorf("probe took %v to stop, want well under the 10 s timeout", elapsed)
	}
	doc := decodeDoc(t, r.stdout)
	if !doc.Interrupted || len(doc.Targets) != 2 {
		t.Fatalf("interrupted %v with %d targets, want true with 2", doc.Interrupted, len(doc.Targets))
	}
	fast, stuck := doc.Targets[0], doc.Targets[1]
	if !fast.OK || len(fast.Attempts) != 1 {
		t.Errorf("fast: ok %v with %d attempts, want its finished attempt", fast.OK, len(fast.Attempts))
	} else {
		checkAttempt(t, fast.Attempts[0], pipelinePhases["https"])
	}
	if stuck.OK || !stuck.Interrupted || len(stuck.Attempts) != 0 {
		t.Errorf("stuck: ok %v, interrupted %v with %d attempts, want it interrupted and its attempt dropped",
			stuck.OK, stuck.Interrupted, len(stuck.Attempts))
	}
	// The stuck target is interrupted, not failed.
	want := report.SummaryCountsJSON{Targets: 2, OK: 1, Failed: 0, Interrupted: 1, FailuresByClass: map[sdk.Class]int{}}
	want.SchedLatency = doc.Summary.SchedLatency // measured; TestSchedLatency checks it
	if diff := cmp.Diff(want, doc.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("stderr %q, want it to say interrupted", r.stderr)
	}
}

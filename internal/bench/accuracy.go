//go:build linux

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/probe-dev/probe/internal/lab/netlab"
)

// The phases compared. connect+tls is the sum, the only figure
// blackbox_exporter's tcp prober has for them.
const (
	phaseResolve    = "resolve"
	phaseConnect    = "connect"
	phaseTLS        = "tls"
	phaseConnectTLS = "connect+tls"
)

// The tools measured against the plain loop.
const (
	toolPlain       = "plain"
	toolProbe       = "probe"
	toolBlackbox    = "blackbox"     // its http prober's phases
	toolBlackboxTCP = "blackbox_tcp" // its tcp prober with TLS
	toolCurl        = "curl"
)

// accuracyHCL is the pipeline probe runs across the link: the far lab's DNS
// server asked for the A record only, as the plain loop does, TCP (the
// connect timed by probe's clock, the default), and TLS trusting the far lab's CA in
// %[2]q; %[1]d attempts one after another.
const accuracyHCL = `
run {
  mode     = "sequential"
  attempts = %[1]d
  timeout  = "5s"
}

resolver "far" {
  plugin      = "dns-miekg"
  servers     = ["%[3]s:53"]
  query_types = ["A"]
}

dialer "tcp" {
  plugin = "dial-tcp"
}

handshake "tls" {
  plugin  = "tls"
  ca_file = %[2]q
}

pipeline "https" {
  resolvers  = [resolver.far]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "api" {
  host     = %[4]q
  port     = 443
  pipeline = pipeline.https
}
`

// accuracyOptions size an accuracy run.
type accuracyOptions struct {
	Delay    time.Duration // one-way delay of the link
	Rounds   int           // rounds kept
	PerRound int           // samples per tool per round
	Probe    string        // the probe binary
	// Self is a binary of this command, built without the race detector:
	// it serves the far lab, and runs the plain loop in a process of its
	// own as probe runs in its own.
	Self  string
	Tools bool // measure blackbox_exporter and curl too
	// MaxLate is the link lateness (p99) past which a round counts as
	// disturbed and another is run, at most Repeats more in all.
	MaxLate time.Duration
	Repeats int
	// Load, when above 0, runs `stress-ng --cpu Load` for the whole run,
	// and the tools (probe, blackbox_exporter, curl) at a normal priority
	// beside it, as they run on a prober's host: what they measure then
	// includes the wait for a processor. probe keeps its default clock
	// (the kernel's round trip of dial-tcp's clock = "kernel" reads the
	// syscalls' and wake-up's time short of the reference's: a bias of about
	// 0.3 ms on this VM). The reference, the far lab and the link keep their real-time priority, so the truth is undisturbed.
	Load int
}

// accuracyResult is what an accuracy run measured, in milliseconds.
type accuracyResult struct {
	// True is the plain loop's median per phase: the reference.
	True map[string]float64
	// Err is, per tool and phase, the median of |measured − True|.
	Err map[string]map[string]float64
	// Bias is, per tool and phase, median(measured) − True: the part of
	// the error that is systematic.
	Bias map[string]map[string]float64
	// Lateness is the largest p99 link lateness of the rounds kept.
	Lateness time.Duration
	// Repeated counts the rounds run again because they were disturbed;
	// the least disturbed are kept.
	Repeated int
}

// samples are measured durations in ms, by tool and phase.
type samples map[string]map[string][]float64

func (s samples) add(tool, phase string, d float64) {
	if s[tool] == nil {
		s[tool] = map[string][]float64{}
	}
	s[tool][phase] = append(s[tool][phase], d)
}

func (s samples) merge(o samples) {
	for tool, phases := range o {
		for phase, v := range phases {
			for _, d := range v {
				s.add(tool, phase, d)
			}
		}
	}
}

// accuracy is an accuracy run in progress: a link, its far lab, and the
// tools started on the near side.
type accuracy struct {
	opts       accuracyOptions
	link       *netlab.Link
	far        *farLab
	dir        string // the pipeline file and resolv.conf
	pipeline   string
	resolvConf string
	bb         *blackbox
}

// measureAccuracy builds a link with opts.Delay each way, starts the far
// lab, and runs rounds of the plain loop, probe, and when asked
// blackbox_exporter and curl, each PerRound times in turn, from the near
// side.
func measureAccuracy(ctx context.Context, opts accuracyOptions) (res accuracyResult, err error) {
	a := &accuracy{opts: opts}
	defer func() { err = errors.Join(err, a.close()) }()
	if a.link, err = netlab.Start(opts.Delay); err != nil {
		return res, err
	}
	if a.far, err = startFarLab(a.link, opts.Self); err != nil {
		return res, err
	}
	if a.dir, err = os.MkdirTemp("", "probe-bench-accuracy-"); err != nil {
		return res, err
	}
	a.pipeline = filepath.Join(a.dir, "accuracy.hcl")
	src := fmt.Sprintf(accuracyHCL, opts.PerRound, a.far.caFile, netlab.FarAddr, netlab.Host)
	if err := os.WriteFile(a.pipeline, []byte(src), 0o644); err != nil {
		return res, err
	}
	a.resolvConf = filepath.Join(a.dir, "resolv.conf")
	conf := "nameserver " + netlab.FarAddr.String() + "\noptions attempts:1 timeout:2\n"
	if err := os.WriteFile(a.resolvConf, []byte(conf), 0o644); err != nil {
		return res, err
	}
	if opts.Tools {
		if a.bb, err = startBlackbox(a.link.Near, opts.Load == 0, a.resolvConf, a.far.caFile, netlab.Host); err != nil {
			return res, err
		}
	}
	if opts.Load > 0 {
		var unload func() error
		if unload, err = startStress(opts.Load); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, unload()) }()
	}

	// Run rounds until Rounds of them were undisturbed, or Repeats more
	// were run; then keep the Rounds least disturbed.
	type taken struct {
		s    samples
		late time.Duration
	}
	var rounds []taken
	for good := 0; good < opts.Rounds && len(rounds) < opts.Rounds+opts.Repeats; {
		s, late, err := a.round(ctx, len(rounds))
		if err != nil {
			return res, err
		}
		r := taken{s, late}
		if r.late <= opts.MaxLate {
			good++
		}
		rounds = append(rounds, r)
	}
	slices.SortStableFunc(rounds, func(x, y taken) int { return cmp.Compare(x.late, y.late) })
	res.Repeated = len(rounds) - opts.Rounds
	all := samples{}
	for _, r := range rounds[:opts.Rounds] {
		res.Lateness = max(res.Lateness, r.late)
		all.merge(r.s)
	}
	res.True = map[string]float64{}
	for phase, v := range all[toolPlain] {
		res.True[phase] = medianOf(v)
	}
	res.Err, res.Bias = map[string]map[string]float64{}, map[string]map[string]float64{}
	for tool, phases := range all {
		res.Err[tool], res.Bias[tool] = map[string]float64{}, map[string]float64{}
		for phase, v := range phases {
			res.Bias[tool][phase] = medianOf(v) - res.True[phase]
			dev := make([]float64, len(v))
			for i, d := range v {
				dev[i] = math.Abs(d - res.True[phase])
			}
			res.Err[tool][phase] = medianOf(dev)
		}
	}
	return res, nil
}

// round takes PerRound samples of each tool, one tool after another, and
// returns them with the link's lateness (p99) meanwhile. Round n starts with
// the n-th tool, so that none always runs first (after a pause of the
// servers) or right after the same other tool.
func (a *accuracy) round(ctx context.Context, n int) (samples, time.Duration, error) {
	s := samples{}
	steps := []func() error{func() error { return a.plain(s) }, func() error { return a.probe(s) }}
	if a.opts.Tools {
		steps = append(steps, func() error { return a.repeat(func() error { return a.blackbox(ctx, s) }) },
			func() error { return a.repeat(func() error { return a.curl(s) }) })
	}
	a.link.ResetLateness()
	for i := range steps {
		if err := steps[(n+i)%len(steps)](); err != nil {
			return nil, 0, err
		}
	}
	return s, a.link.Lateness().P99, nil
}

// repeat calls sample PerRound times.
func (a *accuracy) repeat(sample func() error) error {
	for range a.opts.PerRound {
		if err := sample(); err != nil {
			return err
		}
	}
	return nil
}

// plain runs the plain loop on the near side for PerRound attempts.
func (a *accuracy) plain(s samples) error {
	cmd := exec.Command(a.opts.Self, plainLoopCmd, "-server", netip.AddrPortFrom(netlab.FarAddr, 53).String(),
		"-host", netlab.Host, "-port", "443", "-ca", a.far.caFile, "-n", strconv.Itoa(a.opts.PerRound))
	out, err := a.output(cmd)
	if err != nil {
		return err
	}
	var times []plainTimes
	if err := json.Unmarshal(out, &times); err != nil {
		return fmt.Errorf("%s output: %w", plainLoopCmd, err)
	}
	for _, t := range times {
		s.add(toolPlain, phaseResolve, t.Resolve)
		s.add(toolPlain, phaseConnect, t.Connect)
		s.add(toolPlain, phaseTLS, t.TLS)
		s.add(toolPlain, phaseConnectTLS, t.Connect+t.TLS)
	}
	return nil
}

// output runs cmd on the near side and returns its standard output.
func (a *accuracy) output(cmd *exec.Cmd) ([]byte, error) { return nearOutput(a.link, cmd) }

// toolOutput runs a measured tool's cmd on the near side and returns its
// standard output: at a real-time priority, or under Load at a normal one.
func (a *accuracy) toolOutput(cmd *exec.Cmd) ([]byte, error) {
	if a.opts.Load > 0 {
		return runOutput(cmd, a.link.Near.Start)
	}
	return a.output(cmd)
}

// nearOutput runs cmd on link's near side at a real-time priority and
// returns its standard output.
func nearOutput(link *netlab.Link, cmd *exec.Cmd) ([]byte, error) {
	return runOutput(cmd, link.Near.StartRealTime)
}

// runOutput runs cmd with start and returns its standard output.
func runOutput(cmd *exec.Cmd, start func(*exec.Cmd) error) ([]byte, error) {
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd, err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", cmd, err, &stderr)
	}
	return out.Bytes(), nil
}

// probeJSON is the part of `probe run -o json` read here.
type probeJSON struct {
	Targets []struct {
		Attempts []struct {
			OK     bool `json:"ok"`
			Phases []struct {
				Phase      string  `json:"phase"`
				DurationMS float64 `json:"duration_ms"`
			} `json:"phases"`
		} `json:"attempts"`
	} `json:"targets"`
}

// probe runs the probe binary on the near side for PerRound attempts.
func (a *accuracy) probe(s samples) error {
	out, err := a.toolOutput(exec.Command(a.opts.Probe, "run", a.pipeline, "-o", "json"))
	if err != nil {
		return err
	}
	var doc probeJSON
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("probe run -o json: %w", err)
	}
	for _, t := range doc.Targets {
		for _, at := range t.Attempts {
			var sum float64
			for _, p := range at.Phases {
				s.add(toolProbe, p.Phase, p.DurationMS)
				if p.Phase == phaseConnect || p.Phase == phaseTLS {
					sum += p.DurationMS
				}
			}
			s.add(toolProbe, phaseConnectTLS, sum)
		}
	}
	return nil
}

// blackbox asks blackbox_exporter for one http probe and one tcp_tls probe
// of the far lab's server.
func (a *accuracy) blackbox(ctx context.Context, s samples) error {
	m, err := a.bb.probe(ctx, "http", "https://"+netlab.Host+"/")
	if err != nil {
		return err
	}
	if m["probe_success"] != 1 {
		return fmt.Errorf("blackbox_exporter: http probe of %s failed", netlab.Host)
	}
	for _, phase := range []string{phaseResolve, phaseConnect, phaseTLS} {
		s.add(toolBlackbox, phase, 1000*m[`probe_http_duration_seconds{phase="`+phase+`"}`])
	}
	m, err = a.bb.probe(ctx, "tcp_tls", netlab.Host+":443")
	if err != nil {
		return err
	}
	if m["probe_success"] != 1 {
		return fmt.Errorf("blackbox_exporter: tcp_tls probe of %s failed", netlab.Host)
	}
	s.add(toolBlackboxTCP, phaseResolve, 1000*m["probe_dns_lookup_time_seconds"])
	s.add(toolBlackboxTCP, phaseConnectTLS, 1000*(m["probe_duration_seconds"]-m["probe_dns_lookup_time_seconds"]))
	return nil
}

// curl runs curl once on the near side, its system resolver asking the far
// lab's DNS server, and reads its -w timings.
func (a *accuracy) curl(s samples) error {
	cmd := exec.Command("curl", "-4", "-sS", "-o", "/dev/null", "--cacert", a.far.caFile,
		"-w", "%{time_namelookup} %{time_connect} %{time_appconnect}", "https://"+netlab.Host+"/")
	netlab.WithResolvConf(cmd, a.resolvConf)
	out, err := a.toolOutput(cmd)
	if err != nil {
		return err
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return fmt.Errorf("curl -w printed %q, want three times", out)
	}
	var t [3]float64
	for i, v := range f {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("curl -w printed %q: %w", out, err)
		}
		t[i] = 1000 * x
	}
	s.add(toolCurl, phaseResolve, t[0])
	s.add(toolCurl, phaseConnect, t[1]-t[0])
	s.add(toolCurl, phaseTLS, t[2]-t[1])
	s.add(toolCurl, phaseConnectTLS, t[2]-t[0])
	return nil
}

// close stops everything the run started.
func (a *accuracy) close() error {
	var errs []error
	if a.bb != nil {
		errs = append(errs, a.bb.close())
	}
	if a.far != nil {
		errs = append(errs, a.far.close())
	}
	if a.link != nil {
		errs = append(errs, a.link.Close())
	}
	if a.dir != "" {
		errs = append(errs, os.RemoveAll(a.dir))
	}
	return errors.Join(errs...)
}

// startStress starts stress-ng with cpus workers spinning on the processors
// (Debian's stress-ng) and returns what stops it.
func startStress(cpus int) (stop func() error, err error) {
	cmd := exec.Command("stress-ng", "--cpu", strconv.Itoa(cpus), "--quiet")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stress-ng (Debian's stress-ng): %w", err)
	}
	return func() error {
		// stress-ng's workers are its children, in its process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err := cmd.Wait(); err != nil && !isKilled(err) {
			return fmt.Errorf("stress-ng: %w; stderr: %s", err, &stderr)
		}
		return nil
	}, nil
}

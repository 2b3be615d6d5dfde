package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// The plugin tests run the probe binary with its built-ins out of process
// (--isolate) and with the example plugin examples/plugins/banner.

var (
	bannerOnce sync.Once
	bannerPath string
	bannerErr  error
)

// bannerBin builds the banner example plugin once, beside the probe binary
// (in a directory of its own, so that probe does not find it there).
func bannerBin(t *testing.T) string {
	t.Helper()
	bannerOnce.Do(func() {
		bannerPath = filepath.Join(filepath.Dir(probeBin), "plugins", "probe-plugin-banner")
		out, err := exec.Command("go", "build", "-o", bannerPath, "../../examples/plugins/banner").CombinedOutput()
		if err != nil {
			bannerErr = fmt.Errorf("go build banner: %w\n%s", err, out)
		}
	})
	if bannerErr != nil {
		t.Fatal(bannerErr)
	}
	return bannerPath
}

// copyExe copies the executable src into a new temporary directory as name
// and returns its path.
func copyExe(t *testing.T, src, name string, mode os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	return dst
}

// startOwn starts bin, a copy of the probe binary of the test's own (so
// that its plugin processes can be told from other tests'), like
// startProbe, in a process group of its own (as a shell runs a command).
func startOwn(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	p := &proc{cmd: exec.CommandContext(ctx, bin, args...), ctx: ctx}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// processesOf returns the command lines of the running processes whose
// executable is bin.
func processesOf(t *testing.T, bin string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, path := range cmdlines {
		b, err := os.ReadFile(path)
		if err != nil { // gone meanwhile
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if args[0] == bin {
			out = append(out, filepath.Dir(path)+": "+strings.Join(args, " "))
		}
	}
	return out
}

// wantNoProcesses fails the test if any process of bin is left.
func wantNoProcesses(t *testing.T, bin string) {
	t.Helper()
	if left := processesOf(t, bin); len(left) > 0 {
		t.Errorf("processes left after probe exited: %v", left)
	}
}

// targetOutcome is what an --isolate run must report as a run in process
// does, per target.
type targetOutcome struct {
	Name     string
	OK       bool
	Failures []string   // "class in phase" per attempt, "" for an ok one
	Phases   [][]string // per attempt
}

func outcomes(doc *report.Document) []targetOutcome {
	var out []targetOutcome
	for _, tj := range doc.Targets {
		o := targetOutcome{Name: tj.Name, OK: tj.OK}
		for _, a := range tj.Attempts {
			f := ""
			if a.Failure != nil {
				f = fmt.Sprintf("%s in %s", a.Failure.Class, a.Failure.Phase)
			}
			var phases []string
			for _, p := range a.Phases {
				phases = append(phases, p.Phase)
			}
			o.Failures, o.Phases = append(o.Failures, f), append(o.Phases, phases)
		}
		out = append(out, o)
	}
	return out
}

// TestIsolateLab runs examples/lab.hcl with the built-ins out of process:
// every target ends as it does in process, the timings hold, and no plugin
// process outlives probe.
func TestIsolateLab(t *testing.T) {
	t.Parallel()
	bin := copyExe(t, probeBin, "probe", 0o755)
	r := probe(t, nil, labArgs("-o", "json")...)
	wantExit(t, r, exitFailed)
	inProcess := decodeDoc(t, r.stdout)
	r = startOwn(t, bin, nil, labArgs("-o", "json", "--isolate", "-v")...).wait(t)
	wantExit(t, r, exitFailed)
	wantNoProcesses(t, bin)
	if !strings.Contains(r.stderr, "plugin.builtin: plugin started") {
		t.Errorf("stderr does not log the start of the built-ins' plugin process:\n%s", r.stderr)
	}
	doc := decodeDoc(t, r.stdout)
	if len(doc.Targets) != len(labTargets) {
		t.Fatalf("%d targets, want %d", len(doc.Targets), len(labTargets))
	}
	for i, lt := range labTargets {
		t.Run(lt.name, func(t *testing.T) { checkLabTarget(t, lt, doc.Targets[i]) })
	}
	if diff := cmp.Diff(outcomes(inProcess), outcomes(doc)); diff != "" {
		t.Errorf("targets (-in process +isolated):\n%s", diff)
	}
	// The counts, not the scheduling delay each process measured of itself.
	if diff := cmp.Diff(inProcess.Summary, doc.Summary, cmpopts.IgnoreFields(report.SummaryCountsJSON{}, "SchedLatency")); diff != "" {
		t.Errorf("summary (-in process +isolated):\n%s", diff)
	}
}

// bannerFile is a pipeline file that checks SSH greetings with the banner
// plugin binary at source pinned to sum, against the targets "ssh" and
// "smtp" on 127.0.0.1; extra goes into the handshake block.
func bannerFile(t *testing.T, source, sum, extra string, sshPort, smtpPort uint16) string {
	t.Helper()
	src := fmt.Sprintf(`plugin "banner" {
  source = %q
  sha256 = %q
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "ssh" {
  plugin = "banner"
%s}

pipeline "ssh" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.ssh]
}

target "ssh" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.ssh
}

target "smtp" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.ssh
}
`, source, sum, extra, sshPort, smtpPort)
	return writeFile(t, "banner.hcl", src)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func startTCP(t *testing.T, banner string) uint16 {
	t.Helper()
	s, err := lab.StartTCP(banner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr.Port()
}

// TestBannerPlugin runs a pipeline through the third-party banner plugin,
// with the built-ins in process and out of process.
func TestBannerPlugin(t *testing.T) {
	t.Parallel()
	banner := bannerBin(t)
	sum := fileSHA256(t, banner)
	sshPort, smtpPort := startTCP(t, "SSH-2.0-OpenSSH_9.2\r\n"), startTCP(t, "220 smtp ready\r\n")
	const expect = "  expect = \"^SSH-2\\\\.0-\"\n"
	file := bannerFile(t, banner, sum, expect, sshPort, smtpPort)
	for _, isolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolate=%v", isolate), func(t *testing.T) {
			t.Parallel()
			args := []string{"run", file, "-o", "json"}
			if isolate {
				args = append(args, "--isolate")
			}
			r := probe(t, nil, args...)
			wantExit(t, r, exitFailed)
			doc := decodeDoc(t, r.stdout)
			if len(doc.Targets) != 2 || len(doc.Targets[0].Attempts) != 1 || len(doc.Targets[1].Attempts) != 1 {
				t.Fatalf("want 2 targets of one attempt each:\n%s", r.stdout)
			}
			ssh, smtp := doc.Targets[0].Attempts[0], doc.Targets[1].Attempts[0]
			phases := []string{"resolve", "connect", "ssh"}
			checkAttempt(t, ssh, phases)
			checkAttempt(t, smtp, phases)
			if !ssh.OK || len(ssh.Phases) != 3 {
				t.Fatalf("ssh: failure %+v, want ok", ssh.Failure)
			}
			if p := ssh.Phases[2]; p.Plugin != "banner" {
				t.Errorf("ssh phase by plugin %q, want banner", p.Plugin)
			}
			checkAttrs(t, ssh.Phases[2], map[string]any{"banner": "SSH-2.0-OpenSSH_9.2"})
			if smtp.Failure == nil || smtp.Failure.Class != sdk.Class("banner.mismatch") || smtp.Failure.Phase != "ssh" {
				t.Fatalf("smtp: failure %+v, want banner.mismatch in phase ssh", smtp.Failure)
			}
			checkAttrs(t, smtp.Phases[2], map[string]any{"banner": "220 smtp ready"})
		})
	}
}

// TestBannerPluginErrors checks the diagnostics of a plugin block and of a
// plugin's attributes: they point at the file's line as a built-in's do.
func TestBannerPluginErrors(t *testing.T) {
	t.Parallel()
	banner := bannerBin(t)
	sum := fileSHA256(t, banner)
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		sum   string
		extra string
		// want are the lines stderr must hold; the first is the error's
		// summary, the second names its line in the file.
		want []string
	}{
		{
			name: "wrong sha256", sum: wrong, extra: "  expect = \"^SSH-\"\n",
			want: []string{"Error: Failed to load plugin", "line 2", "does not match its sha256 pin " + wrong},
		},
		{
			name: "misspelt required attribute", sum: sum, extra: "  expct = \"^SSH-\"\n",
			want: []string{"Error: Unsupported argument", "line 11", `An argument named "expct" is not expected here. Did you mean "expect"?`},
		},
		{
			name: "misspelt optional attribute", sum: sum, extra: "  expect = \"^SSH-\"\n  timeot = \"1s\"\n",
			want: []string{"Error: Unsupported argument", "line 12", `An argument named "timeot" is not expected here. Did you mean "timeout"?`},
		},
		{
			name: "value the plugin refuses", sum: sum, extra: "  expect = \"^SSH-(\"\n",
			want: []string{"Error: Invalid regular expression", "line 11", "expect does not compile"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := bannerFile(t, banner, tt.sum, tt.extra, 1, 2)
			for _, cmd := range []string{"validate", "run"} {
				r := probe(t, nil, cmd, file)
				wantExit(t, r, exitUsage)
				if r.stdout != "" {
					t.Errorf("%s printed on stdout:\n%s", cmd, r.stdout)
				}
				stderr := strings.Join(strings.Fields(r.stderr), " ") // unwrapped
				wantLine := fmt.Sprintf("on %s %s", file, tt.want[1])
				for _, want := range []string{tt.want[0], wantLine, tt.want[2]} {
					if !strings.Contains(stderr, want) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, r.stderr)
					}
				}
			}
		})
	}
}

// TestPluginsList lists the plugin binaries on PROBE_PLUGIN_PATH: the
// banner plugin with its version, and why the others may not run.
func TestPluginsList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	banner := filepath.Join(dir, "probe-plugin-banner")
	fake := filepath.Join(dir, "probe-plugin-fake")
	future := filepath.Join(dir, "probe-plugin-future")
	noexec := filepath.Join(dir, "probe-plugin-noexec")
	for _, f := range []struct {
		path string
		src  []byte
		mode os.FileMode
	}{
		{banner, nil, 0o755},
		{fake, []byte("#!/bin/sh\necho 'not a plugin'\n"), 0o755},
		// go-plugin's handshake line of a plugin of protocol version 2.
		{future, []byte("#!/bin/sh\necho '1|2|unix|/nonexistent.sock|grpc'\nexec sleep 10\n"), 0o755},
		{noexec, []byte("#!/bin/sh\n"), 0o644},
	} {
		src := f.src
		if src == nil {
			var err error
			if src, err = os.ReadFile(bannerBin(t)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(f.path, src, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	r := probe(t, []string{"PROBE_PLUGIN_PATH=" + dir}, "plugins")
	wantExit(t, r, exitOK)
	lines := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			lines[f[0]] = strings.Join(f, " ")
		}
	}
	for name, want := range map[string]string{
		"banner": "banner 1.0.0 handshake " + banner + " (PROBE_PLUGIN_PATH) Reads a server's greeting line",
		"fake":   "fake - - " + fake + " (PROBE_PLUGIN_PATH) refused: ",
		"future": "future - - " + future + " (PROBE_PLUGIN_PATH) refused: plugin future: start " + future +
			": incompatible API version with plugin. Plugin version: 2, Client versions: [1]",
		"noexec": "noexec - - " + noexec + " (PROBE_PLUGIN_PATH) refused: plugin binary " + noexec + " is not executable",
	} {
		if !strings.HasPrefix(lines[name], want) {
			t.Errorf("line of %s: %q, want it to start with %q\nstdout:\n%s", name, lines[name], want, r.stdout)
		}
	}
	if want := "refused: plugin fake: start " + fake + ": Unrecognized remote plugin message: not a plugin"; !strings.HasSuffix(lines["fake"], want) {
		t.Errorf("line of fake: %q, want it to end with %q", lines["fake"], want)
	}
	if want := 1 + len(builtins.Plugins()) + 4; len(lines) != want { // the header, the built-ins, the binaries: a reason on one line
		t.Errorf("%d lines, want %d:\n%s", len(lines), want, r.stdout)
	}
	if strings.Contains(r.stderr, "failed to exit gracefully") { // a refused binary is not killed twice
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

// stuckRun starts an --isolate run of a target that waits on the silent
// DNS server with bin, a copy of the probe binary, with TMPDIR set to tmp,
// and returns once its plugin process runs and the attempt is under way.
func stuckRun(t *testing.T, bin, tmp string) *proc {
	t.Helper()
	file := writeFile(t, "stuck.hcl", labHeader("10s")+fmt.Sprintf(`
run {
  timeout = "10s"
}

target "stuck" {
  host     = "silent.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))
	p := startOwn(t, bin, []string{"TMPDIR=" + tmp}, "run", file, "-o", "json", "--isolate")
	deadline := time.Now().Add(5 * time.Second)
	for len(processesOf(t, bin)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no plugin process after 5 s: %v", processesOf(t, bin))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return p
}

// TestInterruptIsolated sends SIGINT to an --isolate run, to its process
// group as Ctrl-C in a terminal does, while a target waits on the silent DNS
// server: probe exits 130 and leaves no plugin process and no plugin socket
// directory.
func TestInterruptIsolated(t *testing.T) {
	t.Parallel()
	bin, tmp := copyExe(t, probeBin, "probe", 0o755), t.TempDir()
	p := stuckRun(t, bin, tmp)
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := p.wait(t)
	wantExit(t, r, exitInterrupted)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("probe took %v to stop", d)
	}
	if doc := decodeDoc(t, r.stdout); !doc.Interrupted || len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 0 {
		t.Errorf("interrupted %v, targets %+v; want true and the interrupted attempt dropped", doc.Interrupted, doc.Targets)
	}
	wantNoProcesses(t, bin)
	left, err := filepath.Glob(filepath.Join(tmp, "probe-plugins-*"))
	if err != nil || len(left) > 0 {
		t.Errorf("plugin socket directories left: %v %v", left, err)
	}
}

// TestKilledIsolated SIGKILLs probe during an --isolate run: probe cannot
// stop its plugin process, which must notice and exit by itself.
func TestKilledIsolated(t *testing.T) {
	t.Parallel()
	bin := copyExe(t, probeBin, "probe", 0o755)
	p := stuckRun(t, bin, t.TempDir())
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for left := processesOf(t, bin); len(left) > 0; left = processesOf(t, bin) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin processes still running 3 s after probe was killed: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

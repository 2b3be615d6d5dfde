package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sdk"
)

// The tests of this file and hostile_e2e_test.go are not t.Parallel: they
// run before the package's parallel tests, one at a time, because they start
// many processes (or 20,000 connections) that would disturb the tests that
// measure timings.

// TestTerminate sends SIGTERM, as a service manager stops a service, to an
// --isolate run once one target has finished and another waits on the
// silent DNS server: probe stops at once, prints what finished in the
// format asked for, counts the waiting target as interrupted (not failed),
// exits 130, and leaves no plugin process, socket file or directory behind.
// The same holds when SIGTERM comes as soon as the plugin process runs,
// while probe may still be loading the file.
func TestTerminate(t *testing.T) {
	file := writeFile(t, "stuck.hcl", labHeader("10s")+fmt.Sprintf(`
run {
  timeout = "10s"
}

target "fast" {
  host     = "api.probe.test"
  port     = %[1]d
  pipeline = pipeline.https
}

target "stuck" {
  host     = "silent.probe.test"
  port     = %[1]d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))
	for _, tc := range []struct {
		name, format string
		starting     bool // signal when the plugin process runs, not when "fast" has finished
	}{
		{"table", "table", false},
		{"json", "json", false},
		{"starting", "json", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bin, tmp := copyExe(t, probeBin, "probe", 0o755), t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			t.Cleanup(cancel)
			p := &proc{cmd: exec.CommandContext(ctx, bin, "run", file, "-o", tc.format, "--isolate", "-v"), ctx: ctx}
			p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp}
			// -v logs each attempt as it finishes; "fast" is done when its line comes.
			finished := make(chan struct{})
			p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &signalWriter{w: &p.stderr, signal: "attempt finished: target=fast", found: finished}
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tc.starting {
				for deadline := time.Now().Add(10 * time.Second); len(processesOf(t, bin)) < 2; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("no plugin process within 10 s")
					}
				}
			} else {
				select {
				case <-finished:
				case <-time.After(10 * time.Second):
					t.Fatal("target fast did not finish within 10 s")
				}
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r := p.wait(t)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("probe took %v to stop", d)
			}
			wantExit(t, r, exitInterrupted)
			switch {
			case tc.format == "json":
				doc := decodeDoc(t, r.stdout)
				if !doc.Interrupted || len(doc.Targets) != 2 {
					t.Fatalf("interrupted %v with %d targets, want true with 2", doc.Interrupted, len(doc.Targets))
				}
				if fast := doc.Targets[0]; !tc.starting && (!fast.OK || len(fast.Attempts) != 1) {
					t.Errorf("fast: ok %v with %d attempts, want its finished attempt", fast.OK, len(fast.Attempts))
				}
				if stuck := doc.Targets[1]; stuck.OK || !stuck.Interrupted || len(stuck.Attempts) != 0 {
					t.Errorf("stuck: ok %v, interrupted %v with %d attempts, want it interrupted and its attempt dropped",
						stuck.OK, stuck.Interrupted, len(stuck.Attempts))
				}
				// A target none of whose attempts finished is interrupted,
				// not failed: "fast" too when the signal came at the start.
				want := report.SummaryCountsJSON{Targets: 2, OK: 1, Interrupted: 1, FailuresByClass: map[sdk.Class]int{}}
				if fast := doc.Targets[0]; tc.starting && !fast.OK {
					want.OK, want.Interrupted = 0, 2
				}
				want.SchedLatency = doc.Summary.SchedLatency // measured; TestSchedLatency checks it
				if diff := cmp.Diff(want, doc.Summary); diff != "" {
					t.Errorf("summary (-want +got):\n%s", diff)
				}
			case tc.format == "table":
				for _, row := range []string{`(?m)^fast\s+127\.0\.0\.1:\d+\s+1/1\s`, `(?m)^stuck\s+-\s+0/0\s+interrupted$`,
					`(?m)^2 targets: 1 ok, 0 failed, 1 interrupted in `} {
					if !regexp.MustCompile(row).MatchString(r.stdout) {
						t.Errorf("table lacks a row matching %s:\n%s", row, r.stdout)
					}
				}
			}
			if !strings.Contains(r.stderr, "interrupted") {
				t.Errorf("stderr %q, want it to say interrupted", r.stderr)
			}
			wantNoProcesses(t, bin)
			if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
				t.Errorf("left in TMPDIR: %v %v", left, err)
			}
		})
	}
}

// signalWriter writes to w and closes found once what it wrote contains
// signal (on one line).
type signalWriter struct {
	w      io.Writer
	signal string
	found  chan struct{}
	line   []byte
}

func (s *signalWriter) Write(b []byte) (int, error) {
	if s.found != nil {
		for _, c := range b {
			if c != '\n' {
				s.line = append(s.line, c)
				continue
			}
			if strings.Contains(string(s.line), s.signal) {
				close(s.found)
				s.found = nil
				break
			}
			s.line = s.line[:0]
		}
	}
	return s.w.Write(b)
}

// TestFDLimit runs 20,000 targets with a concurrency of 1,000 under
// `ulimit -n 256`: probe fits its concurrency in the descriptors it has,
// says so at debug level, and every attempt succeeds (none fails for want
// of a descriptor: no local.fd_limit, no tcp.error).
func TestFDLimit(t *testing.T) {
	const n = 20000
	// Four servers, so that the connections spread over four times the
	// loopback port space.
	ports := make([]string, 4)
	for i := range ports {
		ports[i] = strconv.Itoa(int(closer(t)))
	}
	file := writeFile(t, "many.hcl", fmt.Sprintf(`
run {
  concurrency = 1000
  timeout     = "10s"
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

pipeline "tcp" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}

target "t" {
  # range makes at most 1024 values: 20 × 1000.
  for_each = flatten([for i in range(%d) : [for j in range(1000) : i * 1000 + j]])
  host     = "127.0.0.1"
  port     = [%s][each.value %% 4]
  pipeline = pipeline.tcp
}
`, n/1000, strings.Join(ports, ", ")))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// At the lowest priority, so as not to slow the tests of other packages
	// that measure timings while this one runs.
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -n 256 && exec nice -n 19 "$0" "$@"`, probeBin, "run", file, "-o", "jsonl", "-v")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ok, failures := 0, map[string]int{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var a struct {
			OK      bool                `json:"ok"`
			Failure *report.FailureJSON `json:"failure"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("decode %q: %v", sc.Text(), err)
		}
		if a.OK {
			ok++
		} else {
			failures[string(a.Failure.Class)+": "+a.Failure.Message]++
		}
	}
	err = cmd.Wait()
	took := time.Since(start)
	if ok != n || len(failures) > 0 {
		t.Errorf("%d ok of %d; failures: %v", ok, n, failures)
	}
	if ctx.Err() != nil || err != nil {
		t.Fatalf("probe: %v (%v)\nstderr tail:\n%s", err, ctx.Err(), tail(stderr.String(), 20))
	}
	capped := regexp.MustCompile(`concurrency capped by the file descriptor limit: concurrency=1000 capped=(\d+) nofile=256 open=\d+`).
		FindStringSubmatch(stderr.String())
	if capped == nil {
		t.Fatalf("stderr does not say concurrency was capped:\n%s", tail(stderr.String(), 20))
	}
	if c, _ := strconv.Atoi(capped[1]); c < 8 || c > 64 {
		t.Errorf("concurrency capped to %d under 256 descriptors, want from 8 to 64", c)
	}
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("stderr mentions EMFILE:\n%s", tail(stderr.String(), 20))
	}
	t.Logf("%d targets in %v, concurrency %s", n, took, capped[1])
}

// closer accepts connections on 127.0.0.1 and closes them at once, until
// the test ends, and returns its port: the cheapest server a connect
// succeeds against, so that a run of many targets costs little but probe's
// own work. Closing first, it keeps most connections' TIME_WAIT on its own
// port: on probe's ephemeral ports 20,000 of them would, for a minute, make
// a later test's listener fail to bind the port it picked (as the lab's DNS
// server does, UDP then TCP on one port).
func closer(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			switch {
			case errors.Is(err, net.ErrClosed):
				return
			case err != nil:
				time.Sleep(time.Millisecond)
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestSecretsNeverPrinted sends a sensitive variable as an HTTP header to a
// server that hands it back in every way a response can: a 401 body, a
// redirect's Location (reported as an attribute), a broken status line (in
// the failure message). The secret must appear in no output format and no
// log line, also with the built-ins out of process, whose logs probe
// re-logs.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "hunter2-e2e-secret"
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		if key == secret {
			seen.Add(1)
		}
		switch r.URL.Path {
		case "/echo":
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "invalid key "+key)
		case "/redirect":
			http.Redirect(w, r, "/login?key="+key, http.StatusFound)
		case "/garbage":
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			buf.WriteString("HTTP/1.1 " + key + " OK\r\n\r\n")
			buf.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	var src strings.Builder
	src.WriteString(`
variable "api_key" {
  sensitive = true
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }
`)
	for _, path := range []string{"echo", "redirect", "garbage"} {
		fmt.Fprintf(&src, `
handshake %[1]q {
  plugin      = "http"
  path        = "/%[1]s"
  headers     = { "X-Api-Key" = var.api_key }
  expect_body = "valid"
}

pipeline %[1]q {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.%[1]s]
}

target %[1]q {
  host     = "127.0.0.1"
  port     = %[2]d
  pipeline = pipeline.%[1]s
}
`, path, port)
	}
	file := writeFile(t, "secret.hcl", src.String())
	env := []string{"PROBE_VAR_api_key=" + secret}
	runs := [][]string{
		{"-o", "table", "-vv"}, {"-o", "json", "-vv"}, {"-o", "jsonl", "-vv"}, {"-o", "waterfall", "-vv"},
		{"-o", "prometheus", "-vv"}, {"-o", "json", "-vv", "--isolate"},
	}
	for _, args := range runs {
		t.Run(strings.Join(args, " "), func(t *testing.T) { // one after another: seen counts each run's requests
			before := seen.Load()
			r := probe(t, env, slices.Concat([]string{"run", file}, args)...)
			wantExit(t, r, exitFailed)
			if seen.Load()-before != 3 {
				t.Fatalf("the server saw the secret %d times, want 3 (once per target)", seen.Load()-before)
			}
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if strings.Contains(out, secret) || strings.Contains(out, "hunter2") {
					t.Errorf("%s shows the secret:\n%s", name, out)
				}
			}
			if args[1] == "json" {
				// The secret was there to show: it shows redacted.
				for _, want := range []string{`"location": "/login?key=(sensitive)"`, `malformed HTTP status code \"(sensitive)\"`} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("JSON lacks %s:\n%s", want, r.stdout)
					}
				}
			}
		})
	}
}

// TestPluginEnvAttribute runs a plugin binary whose handshake reports its
// environment, with a plugin block listing TS_AUTHKEY in env: the plugin
// sees it, PATH and HOME, and nothing else of probe's environment.
func TestPluginEnvAttribute(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "probe-plugin-env")
	if out, err := exec.Command("go", "build", "-o", bin, "../../core/pluginhost/testdata/envplugin").CombinedOutput(); err != nil {
		t.Fatalf("go build envplugin: %v\n%s", err, out)
	}
	file := writeFile(t, "env.hcl", fmt.Sprintf(`
plugin "env" {
  source = %q
  env    = ["TS_AUTHKEY"]
}

resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }
handshake "env" { plugin = "env" }

pipeline "env" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.env]
}

target "env" {
  host     = "127.0.0.1"
  port     = %d
  pipeline = pipeline.env
}
`, bin, testLab.TCP.Addr.Port()))
	r := probe(t, []string{"TS_AUTHKEY=tskey-auth-e2e", "GITHUB_TOKEN=not-for-plugins", "LANG=C.UTF-8"}, "run", file, "-o", "json")
	wantExit(t, r, exitOK)
	doc := decodeDoc(t, r.stdout)
	p := findPhase(doc.Targets[0].Attempts[0], "env")
	if p == nil {
		t.Fatalf("no env phase: %s", r.stdout)
	}
	got := map[string]string{}
	for _, kv := range p.Attrs["environ"].([]any) {
		k, v, _ := strings.Cut(kv.(string), "=")
		if !strings.HasPrefix(k, "PLUGIN_") && k != "PROBE_PLUGIN_MAGIC_COOKIE" { // go-plugin's own
			got[k] = v
		}
	}
	want := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "LANG": "C.UTF-8", "TS_AUTHKEY": "tskey-auth-e2e"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the plugin's environment is %v, want %v", got, want)
	}
}

// TestValidateTerminate sends SIGTERM to `probe validate --isolate` as soon
// as its plugin process runs: probe stops its plugins before it exits (130,
// or 0 when the check was done before the signal came) and leaves no
// process, socket file or directory behind.
func TestValidateTerminate(t *testing.T) {
	file := writeFile(t, "validate.hcl", labHeader("10s")+fmt.Sprintf(`
target "fast" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.https
}
`, testLab.TLS.Addr.Port()))
	bin, tmp := copyExe(t, probeBin, "probe", 0o755), t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	p := &proc{cmd: exec.CommandContext(ctx, bin, "validate", file, "--isolate"), ctx: ctx}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The load is short: watch probe's own children, not every process.
	tasks := fmt.Sprintf("/proc/%d/task/*/children", p.cmd.Process.Pid) // each thread's own
	started := func() bool {
		lists, _ := filepath.Glob(tasks)
		for _, l := range lists {
			if b, _ := os.ReadFile(l); len(strings.TrimSpace(string(b))) > 0 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !started(); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("no plugin process within 10 s")
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t)
	if r.code != exitInterrupted && r.code != 0 {
		t.Errorf("exit %d, want %d (or 0 when done before the signal); stderr:\n%s", r.code, exitInterrupted, r.stderr)
	}
	wantNoProcesses(t, bin)
	if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
		t.Errorf("left in TMPDIR: %v %v", left, err)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bounds the hostile files run under. The address space leaves room
// for the Go runtime's reservations (probe validate of an empty file
// reserves 1.3 GB of it and touches 20 MB); the files, before their
// limits, wanted tens of gigabytes or ran for ever.
const (
	hostileAS      = "3000000" // ulimit -v, KiB
	hostileTimeout = 60 * time.Second
	hostileRSS     = 1 << 30 // the most resident memory a hostile file may cost
)

// hostileHeader is the start of the hostile files: a valid pipeline.
const hostileHeader = `
resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }
pipeline "p" {
  resolvers = [resolver.system]
  dialer    = dialer.tcp
}
`

// hostileTarget is a target block over forEach.
func hostileTarget(forEach string) string {
	return hostileHeader + fmt.Sprintf(`
target "t" {
  for_each = %s
  host     = "${each.value}.probe.test"
  port     = 80
  pipeline = pipeline.p
}
`, forEach)
}

// The files of issue 23 that crashed or hung probe: 300 bytes that make a
// billion elements, three nested for expressions of a billion steps, a
// list nested 70,000 deep (140 KB) that exhausted HCL's parser's stack.
var (
	setproductFile = hostileTarget("setproduct(range(1000), range(1000), range(1000))")
	nestedForFile  = hostileTarget(`toset([for s in flatten([for a in range(1000) : [for b in range(1000) : [for c in range(1000) : "x"]]]) : s])`)
	deepFile       = "x = " + strings.Repeat("[", 70_000) + strings.Repeat("]", 70_000) + "\n"
)

// runBounded runs the probe binary with args under hostileAS and
// hostileTimeout and returns what it left and its peak resident memory.
func runBounded(t *testing.T, env []string, args ...string) (result, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), hostileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `ulimit -v ` + hostileAS + ` && exec "$0" "$@"`, probeBin}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	rss := peak()
	if ctx.Err() != nil {
		t.Fatalf("probe %s: not done in %v\nstderr:\n%s", strings.Join(args, " "), hostileTimeout, &stderr)
	}
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, rss
}

// TestHostileFiles validates the files that crashed probe or ran for ever
// (issue 23 items 1 and 2), with the real binary under ulimit -v and a
// timeout: each is a usage error (exit 2) with a diagnostic that names the
// limit, in bounded time and memory; and a file of 100,000 targets, which
// the project promises, still loads under the same bounds.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	vars := hostileHeader + `variable "ports" { type = list(number) }` + "\n"
	deepValue := strings.Repeat("[", 100_000) // one argument of at most 128 KiB
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"setproduct of a billion", nil, []string{"validate", write("setproduct.hcl", setproductFile)},
			[]string{"Error: Evaluation limit exceeded", "setproduct.hcl line 10, in target", "Evaluating setproduct (4,000,003,007 steps) takes the file past 4,000,000 steps"}},
		{"a billion steps of for expressions", nil, []string{"validate", write("for.hcl", nestedForFile)},
			[]string{"Error: Evaluation limit exceeded", "for.hcl line 10, in target", "takes the file past 4,000,000 steps"}},
		{"/dev/zero", nil, []string{"validate", "/dev/zero"},
			[]string{"Error: File too large", `The pipeline file "/dev/zero" holds more than 8 MiB, the most probe reads for a file.`}},
		{"70,000 nested lists", nil, []string{"validate", write("deep.hcl", deepFile)},
			[]string{"Error: Nesting too deep", "deep.hcl line 1:", "This opens level 129 of nesting; probe parses at most 128 levels", "this is column 133"}},
		{"a -var-file of 70,000 nested lists", nil, []string{"validate", write("vars.hcl", vars), "--var-file", write("deep.tfvars", "ports = "+deepFile[4:])},
			[]string{"Error: Nesting too deep", "deep.tfvars line 1", "level 129 of nesting"}},
		{"a -var of 100,000 nested lists", nil, []string{"validate", write("vars.hcl", vars), "--var", "ports=" + deepValue},
			[]string{"Error: Invalid value for variable", "The value from -var ports was not parsed: at its line 1, column 129: This opens level 129 of nesting"}},
		{"a PROBE_VAR_ of 100,000 nested lists", []string{"PROBE_VAR_ports=" + deepValue}, []string{"validate", write("vars.hcl", vars)},
			[]string{"Error: Invalid value for variable", "environment variable PROBE_VAR_ports was not parsed", "level 129 of nesting"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r, rss := runBounded(t, tc.env, tc.args...)
			t.Logf("%v, peak RSS %d MB", time.Since(start).Round(time.Millisecond), rss>>20)
			wantExit(t, r, exitUsage)
			words := strings.Join(strings.Fields(r.stderr), " ") // as the diagnostic wraps its lines
			for _, want := range tc.want {
				if !strings.Contains(words, want) {
					t.Errorf("stderr lacks %q:\n%.3000s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "fatal error") || rss > hostileRSS {
				t.Errorf("peak RSS %d MB (at most %d), stderr:\n%.3000s", rss>>20, hostileRSS>>20, r.stderr)
			}
		})
	}
	t.Run("100,000 targets", func(t *testing.T) {
		names := make([]string, 100_000)
		for i := range names {
			names[i] = fmt.Sprintf("%q", fmt.Sprintf("t%06d", i))
		}
		path := write("many.hcl", hostileTarget("toset(["+strings.Join(names, ",\n")+"])"))
		start := time.Now()
		r, rss := runBounded(t, nil, "validate", path)
		t.Logf("%v, peak RSS %d MB", time.Since(start).Round(time.Millisecond), rss>>20)
		wantExit(t, r, exitOK)
		if !strings.Contains(r.stdout, "is valid: 1 pipelines, 100000 targets.") || rss > hostileRSS {
			t.Errorf("peak RSS %d MB, stdout:\n%s\nstderr:\n%s", rss>>20, r.stdout, r.stderr)
		}
	})
}

// TestServeReloadHostile reloads each hostile file under probe serve, run
// under the same bounds: every reload fails with the file's diagnostic, in
// the answer to POST /-/reload, and the last good file goes on being
// served.
func TestServeReloadHostile(t *testing.T) {
	t.Parallel()
	file := serveFile(t, "")
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeWith(t, filepath.Base(file), filepath.Dir(file), `ulimit -v `+hostileAS+` && exec "$0" "$@" --web.enable-lifecycle`)
	base := "http://" + srv.addr
	for _, tc := range []struct {
		name, src, want string
	}{
		{"setproduct of a billion", setproductFile, "Evaluating setproduct (4,000,003,007 steps) takes the file past 4,000,000 steps"},
		{"a billion steps of for expressions", nestedForFile, "takes the file past 4,000,000 steps"},
		{"70,000 nested lists", deepFile, "This opens level 129 of nesting"},
		{"/dev/zero", "", `holds more than 8 MiB`},
	} {
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		if tc.src == "" {
			err = os.Symlink("/dev/zero", file)
		} else {
			err = os.WriteFile(file, []byte(tc.src), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := http.Post(base+"/-/reload", "", nil)
		if err != nil {
			t.Fatalf("%s: POST /-/reload: %v\nstderr:\n%s", tc.name, err, srv.stderr())
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: reload answered in %v", tc.name, time.Since(start).Round(time.Millisecond))
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(answer), "reload failed: serve.hcl did not load:") ||
			!strings.Contains(string(answer), tc.want) {
			t.Errorf("%s: POST /-/reload: %d %.2000s\nwant 500 with %q", tc.name, resp.StatusCode, answer, tc.want)
		}
		if status, body := get(t, base+"/probe?target=api"); status != http.StatusOK || !strings.Contains(body, "probe_success 1") {
			t.Errorf("%s: after the failed reload: %d %s; want the last good file served", tc.name, status, body)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Post(base+"/-/reload", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("reload of the good file again: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginsNew writes a plugin of each kind with `probe plugins new` into
// a module that requires this repository's (a replace directive), and
// checks that each builds, vets (its test included) and passes `probe
// plugins check` with the check file it came with, as generated.
func TestPluginsNew(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// This repository's requirements, so that the module cache has every
	// module already: no network.
	_, rest, _ := strings.Cut(string(gomod), "\n")
	gomod = []byte("module example.com/myplugins\n" + rest +
		"\nrequire github.com/probe-dev/probe v0.0.0\n\nreplace github.com/probe-dev/probe => " + repo + "\n")
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": gomod, "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(mod, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kinds := []string{"handshake", "dialer", "resolver"}
	for _, k := range kinds {
		r := probe(t, nil, "plugins", "new", "my-"+k, "--kind", k, "--dir", filepath.Join(mod, "my-"+k))
		wantExit(t, r, exitOK)
		for _, f := range []string{"main.go", "plugin.go", k + ".go", k + "_test.go", "check.hcl", "README.md"} {
			if !strings.Contains(r.stdout, filepath.Join(mod, "my-"+k, f)+"\n") {
				t.Errorf("%s: stdout %q does not list %s", k, r.stdout, f)
			}
		}
	}
	gocmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	gocmd("vet", "./...")
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) {
			bin := filepath.Join(mod, "bin", "probe-plugin-my-"+k)
			gocmd("build", "-o", bin, "./my-"+k)
			r := probe(t, nil, "plugins", "check", bin, "--config", filepath.Join(mod, "my-"+k, "check.hcl"))
			wantExit(t, r, exitOK)
			// Every row passes but the whole attempt's: one kind alone.
			if m := checkSummary.FindStringSubmatch(r.stdout); m == nil || m[3] != "0" || m[4] != "1" ||
				!strings.Contains(r.stdout, "whole attempt    skip: the binary serves no resolver, dialer and handshake") {
				t.Errorf("summary %q, want every check but the whole attempt run and passed:\n%s", m, r.stdout)
			}
		})
	}
}

// TestPluginsNewErrors: a bad name or kind, or a directory in use, is a
// usage error that writes nothing.
func TestPluginsNewErrors(t *testing.T) {
	t.Parallel()
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"My_Plugin", "--kind", "handshake"}, `plugin name "My_Plugin": use lower-case letters, digits and hyphens`},
		{"bad kind", []string{"greeter", "--kind", "sink", "--dir", filepath.Join(t.TempDir(), "g")}, `--kind "sink": want handshake, dialer or resolver`},
		{"no kind", []string{"greeter"}, `required flag(s) "kind" not set`},
		{"directory in use", []string{"greeter", "--kind", "dialer", "--dir", used}, used + " is not empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probe(t, nil, append([]string{"plugins", "new"}, tc.args...)...)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("stdout %q, stderr %q; want nothing written and an error saying %q", r.stdout, r.stderr, tc.want)
			}
		})
	}
}

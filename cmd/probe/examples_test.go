package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/pluginhost"
)

// TestExamples loads and validates every example pipeline with the built-in
// plugins and the tailscale plugin binary, found on PROBE_PLUGIN_PATH as a
// user's would be: no diagnostic at all, and something to probe.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	t.Setenv(pluginhost.PathEnv, tailscalePlugin(t))
	// lab.hcl reads the lab's CA file; the others need nothing.
	vars := map[string]map[string]string{"lab.hcl": testLab.Vars()}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			pl := &plugins{log: hclog.NewNullLogger()}
			t.Cleanup(func() { _ = pl.Close() })
			l := config.NewLoader(config.Options{
				Plugins: builtins(),
				Loader:  pl,
				Vars:    vars[filepath.Base(path)],
				Getenv:  func(string) string { return "" },
				Environ: func() []string { return nil },
			})
			f, diags := l.LoadFile(path)
			if len(diags) > 0 {
				var b strings.Builder
				_ = l.WriteDiagnostics(&b, diags, 100, false)
				t.Fatalf("diagnostics:\n%s", &b)
			}
			t.Cleanup(func() { _ = f.Close() })
			if len(f.Pipelines) == 0 || len(f.Targets) == 0 {
				t.Errorf("%d pipelines and %d targets, want some of each", len(f.Pipelines), len(f.Targets))
			}
		})
	}
}

// tailscalePlugin builds probe-plugin-tailscale, which lives in a module of
// its own (plugins/tailscale), and returns the directory it is in. go tool
// caches the build, so this takes about a second once the cache is warm.
func tailscalePlugin(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "tool", "-n", "probe-plugin-tailscale")
	cmd.Dir = "../../plugins/tailscale"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build probe-plugin-tailscale: %v", err)
	}
	bin, err := os.ReadFile(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, pluginhost.BinaryPrefix+"tailscale"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/config"
)

// TestExamples loads and validates every example pipeline with the built-in
// plugins: no diagnostic at all, and something to probe.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	// lab.hcl reads the lab's CA file; the others need nothing.
	vars := map[string]map[string]string{"lab.hcl": testLab.Vars()}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			l := config.NewLoader(config.Options{
				Plugins: builtins(),
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

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fleetDir is the fleet example, from this package.
var fleetDir = filepath.Join("..", "..", "examples", "fleet")

// lookTool finds a program a test needs, failing when it is missing.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test needs %s: %v (install the Debian package %s; make test does, see .ci/deps)", name, err, pkg)
	}
	return bin
}

// TestFleetRules checks examples/fleet with the real tools: promtool finds
// its Prometheus configuration and rules valid and runs the rules' unit
// tests (rules_test.yml: the alert fires for a target failing from more
// than half of the vantage points that answer, not for one vantage point's
// trouble nor for one that is down), and systemd-analyze finds the unit
// valid without a warning.
func TestFleetRules(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "rules.yml"},
		{"test", "rules", "rules_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = fleetDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	analyze := lookTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join(fleetDir, "probe-serve.service"))
	if err != nil {
		t.Fatal(err)
	}
	const exe = "/usr/local/bin/probe"
	if !strings.Contains(string(unit), "ExecStart="+exe+" serve ") {
		t.Fatalf("probe-serve.service no longer starts %s serve; update this test", exe)
	}
	// systemd-analyze checks that the program exists: the one under test.
	path := filepath.Join(t.TempDir(), "probe-serve.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), exe, probeBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify probe-serve.service: %v\n%s", err, out)
	}
}

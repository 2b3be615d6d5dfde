package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTargetsFile runs the real binary over a pipeline file whose target
// block reads its targets from a file beside it: validate counts them,
// every output probes them after the file's own target, each named
// BLOCK[HOST:PORT], and a bad line is an error that names it.
func TestTargetsFile(t *testing.T) {
	tcp, refused := labPort(t, "tcp_port"), labPort(t, "refused_port")
	dir := t.TempDir()
	list := filepath.Join(dir, "fleet.txt")
	if err := os.WriteFile(list, fmt.Appendf(nil, "# the lab\n127.0.0.1:%d\napi.probe.test\n\n127.0.0.1:%d\n", tcp, refused), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "fleet.hcl")
	if err := os.WriteFile(file, []byte(labHeader("2s")+fmt.Sprintf(`
target "one" {
  host     = "api.probe.test"
  port     = %[1]d
  pipeline = pipeline.tcp
}

target "fleet" {
  targets_file = "fleet.txt"
  port         = %[1]d
  pipeline     = pipeline.tcp
}
`, tcp)), 0o600); err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"one", fmt.Sprintf("fleet[127.0.0.1:%d]", tcp), fmt.Sprintf("fleet[api.probe.test:%d]", tcp),
		fmt.Sprintf("fleet[127.0.0.1:%d]", refused)}

	r := probe(t, nil, "validate", file)
	wantExit(t, r, 0)
	if !strings.Contains(r.stdout, "4 targets") {
		t.Errorf("validate: %q, want 4 targets", r.stdout)
	}

	r = probe(t, nil, "run", file, "-o", "jsonl", "--concurrency", "1")
	wantExit(t, r, exitFailed)
	var names []string
	for line := range strings.Lines(r.stdout) {
		var a struct {
			Target  string `json:"target"`
			Failure *struct {
				Class string `json:"class"`
			} `json:"failure"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		names = append(names, a.Target)
		if failed := a.Failure != nil; failed != (a.Target == wantNames[3]) || failed && a.Failure.Class != "tcp.refused" {
			t.Errorf("%s: failure %+v", a.Target, a.Failure)
		}
	}
	if !slices.Equal(wantNames, names) {
		t.Errorf("jsonl targets %q, want %q", names, wantNames)
	}

	r = probe(t, nil, "run", file, "-o", "json", "--attempts", "2")
	wantExit(t, r, exitFailed)
	doc := decodeDoc(t, r.stdout)
	names = nil
	for _, tg := range doc.Targets {
		names = append(names, tg.Name)
		if len(tg.Attempts) != 2 {
			t.Errorf("%s: %d attempts, want 2 (--attempts)", tg.Name, len(tg.Attempts))
		}
	}
	if !slices.Equal(wantNames, names) || doc.Summary.Targets != 4 || doc.Summary.Failed != 1 {
		t.Errorf("json targets %q, summary %+v; want %q, one failed", names, doc.Summary, wantNames)
	}

	r = probe(t, nil, "run", file, "-o", "prometheus")
	wantExit(t, r, exitFailed)
	if want := fmt.Sprintf(`probe_attempts_total{target="fleet[api.probe.test:%d]"} 1`, tcp); !strings.Contains(r.stdout, want) {
		t.Errorf("prometheus output lacks %s:\n%s", want, r.stdout)
	}

	// A list with a bad line is refused, line and all, before anything is
	// probed (a list that goes bad during a run: config's
	// TestTargetsFileChanged).
	if err := os.WriteFile(list, fmt.Appendf(nil, "127.0.0.1:%d\nbad:port\n", tcp), 0o600); err != nil {
		t.Fatal(err)
	}
	r = probe(t, nil, "validate", file)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "Invalid target in targets file") || !strings.Contains(r.stderr, `line 2: "bad:port"`) {
		t.Errorf("validate of a bad list:\n%s", r.stderr)
	}
}

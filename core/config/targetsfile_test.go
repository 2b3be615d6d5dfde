package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// targetsFileHCL probes the targets of fleet.txt (beside the pipeline
// file) with a resolver that matches *.lab and 127.0.0.0/8 only; %s is
// more of the block.
const targetsFileHCL = `
resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
  match   = ["*.lab", "127.0.0.0/8", "::1/128"]
}
dialer "tcp" { plugin = "tcp" }
pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "api" {
  host     = "api.lab"
  port     = 443
  pipeline = pipeline.tcp
}
target "fleet" {
  targets_file = "fleet.txt"
  pipeline     = pipeline.tcp
  %s
}
`

// loadTargetsFile writes fleet.txt and the pipeline file with more in the
// fleet block into a directory of their own, and loads it, streaming its
// targets files or not. It returns the file, or the diagnostics' text.
func loadTargetsFile(t *testing.T, fleet, more string, stream bool) (*File, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fleet.txt"), []byte(fleet), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(targetsFileHCL, more)), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }, StreamTargets: stream})
	f, diags := l.LoadFile(path)
	if len(diags) > 0 {
		var buf bytes.Buffer
		_ = l.WriteDiagnostics(&buf, diags, 200, false)
		return nil, buf.String()
	}
	t.Cleanup(func() { _ = f.Close() })
	return f, ""
}

const fleet = `# the fleet
web1.lab
web2.lab:8443

  127.0.0.1:80
[::1]:22
::1
`

// TestTargetsFile reads a targets file's lines as targets, streamed (read
// again as the run goes) and not (the file's targets).
func TestTargetsFile(t *testing.T) {
	want := []string{
		"fleet[web1.lab:443] web1.lab:443 attempts 3 timeout 2s",
		"fleet[web2.lab:8443] web2.lab:8443 attempts 3 timeout 2s",
		"fleet[127.0.0.1:80] 127.0.0.1:80 attempts 3 timeout 2s",
		"fleet[[::1]:22] ::1:22 attempts 3 timeout 2s",
		"fleet[[::1]:443] ::1:443 attempts 3 timeout 2s",
	}
	more := "port = 443\n  attempts = 3\n  timeout = \"2s\""

	f, diags := loadTargetsFile(t, fleet, more, true)
	if diags != "" {
		t.Fatal(diags)
	}
	if len(f.Targets) != 1 || len(f.TargetsFiles) != 1 || f.TargetsFiles[0].Count != len(want) {
		t.Fatalf("%d targets, %d targets files (want 1 and 1 of %d targets)", len(f.Targets), len(f.TargetsFiles), len(want))
	}
	var got []string
	for tg, err := range f.TargetsFiles[0].All() {
		if err != nil {
			t.Fatal(err)
		}
		if tg.Pipeline != f.Pipelines["tcp"] {
			t.Errorf("%s: pipeline %v, want tcp", tg.Name, tg.Pipeline)
		}
		got = append(got, fmt.Sprintf("%s %s:%d attempts %d timeout %v", tg.Name, tg.Host, tg.Port, tg.Attempts, tg.Timeout))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streamed targets (-want +got):\n%s", diff)
	}

	f, diags = loadTargetsFile(t, fleet, more, false)
	if diags != "" {
		t.Fatal(diags)
	}
	got = nil
	for _, tg := range f.Targets[1:] {
		got = append(got, fmt.Sprintf("%s %s:%d attempts %d timeout %v", tg.Name, tg.Host, tg.Port, tg.Attempts, tg.Timeout))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the file's targets (-want +got):\n%s", diff)
	}
	if len(f.TargetsFiles) != 0 || len(f.Discovery.Files) != 1 || filepath.Base(f.Discovery.Files[0]) != "fleet.txt" {
		t.Errorf("targets files %v, discovery %v: want none, and fleet.txt to watch", f.TargetsFiles, f.Discovery.Files)
	}
}

// TestTargetsFileChanged: a line that went bad after the load ends the
// stream with an error that names it.
func TestTargetsFileChanged(t *testing.T) {
	f, diags := loadTargetsFile(t, "a.lab\nb.lab\n", "port = 80", true)
	if diags != "" {
		t.Fatal(diags)
	}
	tf := f.TargetsFiles[0]
	if err := os.WriteFile(tf.Path, []byte("a.lab\nb.lab:0\nc.lab\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var names []string
	var last error
	for tg, err := range tf.All() {
		if err != nil {
			last = err
			continue
		}
		names = append(names, tg.Name)
	}
	if want := []string{"fleet[a.lab:80]"}; !cmp.Equal(want, names) || last == nil || !strings.Contains(last.Error(), "fleet.txt:2: ") {
		t.Errorf("targets %v, error %v: want %v, then an error on fleet.txt:2", names, last, want)
	}
}

// TestTargetsFileErrors checks the diagnostics of bad targets files and
// blocks.
func TestTargetsFileErrors(t *testing.T) {
	var many strings.Builder
	for i := range 12 {
		fmt.Fprintf(&many, "bad%d.lab:http\n", i)
	}
	tests := []struct {
		name, fleet, more string
		stream            bool
		want              []string // in the diagnostics' text
	}{
		{"no port", "a.lab\nb.lab:80\n", "", true,
			[]string{`fleet.txt, line 1: "a.lab" has no port, and the block no port attribute to give it one.`}},
		{"bad port", "a.lab:99999\n", "", true, []string{`line 1: "a.lab:99999": the port must be a whole number from 1 to 65535`}},
		{"not host:port", "a.lab:1:2\n", "", true, []string{`line 1: "a.lab:1:2" is not host, host:port or [IPv6]:port`}},
		{"no route", "example.com:80\n", "", true, []string{`line 1: "example.com:80": no resolver of pipeline "tcp" matches the host`}},
		{"control character", "a\x1b.lab:80\n", "", true, []string{`line 1: host "a\x1b.lab" holds a control character`}},
		{"ten and more", many.String(), "", true, []string{"line 10: ", "fleet.txt: 2 more lines are not targets."}},
		{"long line", strings.Repeat("a", 5000) + "\n", "", true, []string{"fleet.txt:1: a line longer than 4096 bytes"}},
		{"longest line", "a.lab:80\n" + strings.Repeat("a", 4090) + ".lab\n", "", true, []string{"fleet.txt, line 2:", "has no port"}},
		{"twice", "a.lab:80\nb.lab:80\na.lab:80\n", "", false, []string{"line 3: the target fleet[a.lab:80] again"}},
		{"host too", "a.lab:80\n", `host = "x.lab"`, true, []string{`Unsupported argument`, `An argument named "host" is not expected here.`}},
		{"for_each too", "a.lab:80\n", `for_each = ["a"]`, true, []string{`An argument named "for_each" is not expected here.`}},
		{"bad port attribute", "a.lab\n", `port = 0`, true, []string{`A port is a whole number from 1 to 65535, got 0.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := loadTargetsFile(t, tt.fleet, tt.more, tt.stream)
			for _, w := range tt.want {
				if !strings.Contains(diags, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, diags)
				}
			}
			if tt.name == "ten and more" && strings.Count(diags, "Invalid target in targets file") != maxTargetsFileErrors+1 {
				t.Errorf("want %d diagnostics:\n%s", maxTargetsFileErrors+1, diags)
			}
		})
	}
}

// TestTargetsFileDuplicateBlock: a targets file's block shares its name
// with no other target block, whose instances its targets' names could be.
func TestTargetsFileDuplicateBlock(t *testing.T) {
	_, diags := loadTargetsFile(t, "a.lab:80\n", "}\ntarget \"fleet\" {\n  host = \"b.lab\"\n  port = 80\n  pipeline = pipeline.tcp", true)
	if !strings.Contains(diags, "Duplicate target") {
		t.Errorf("want a Duplicate target diagnostic:\n%s", diags)
	}
}

// TestTargetsFileMissing: a targets file that cannot be read is an error
// of the pipeline file that says why.
func TestTargetsFileMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(targetsFileHCL, "port = 80")), 0o600); err != nil {
		t.Fatal(err)
	}
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }, StreamTargets: true})
	_, diags := l.LoadFile(path)
	if !diags.HasErrors() || diags[0].Summary != "Unreadable targets file" || !strings.Contains(diags[0].Detail, "no such file") {
		t.Errorf("diagnostics %v: want Unreadable targets file, no such file", diags)
	}
}

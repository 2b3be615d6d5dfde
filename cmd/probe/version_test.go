package main

import (
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/plugins/builtins"
)

// pluginsLine is the plugins line of the version text: every built-in
// plugin, by name, with the version it declares.
func pluginsLine() string {
	var ps []string
	for _, name := range []string{"dial-http-connect", "dial-socks5", "dial-tcp", "dial-udp", "dns-miekg", "dns-system", "grpc-health", "http", "http3", "icmp", "quic", "ssh", "starttls", "tls", "udp-payload"} {
		ps = append(ps, name+" "+builtins.Plugins()[name].Info.Version)
	}
	return "plugins: " + strings.Join(ps, ", ")
}

func TestVersionText(t *testing.T) {
	t.Parallel()
	plugins := pluginsLine()
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want []string // the first two lines
	}{
		{"no build info", nil, []string{"probe (devel)", "commit:  unknown: built without version control information"}},
		{"devel without vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			[]string{"probe (devel)", "commit:  unknown: built without version control information"}},
		{"release", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "9efeac908160196b4c4bd765fe4222f52dccc431"},
			{Key: "vcs.time", Value: "2026-11-22T10:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}, []string{"probe v1.2.3", "commit:  9efeac908160196b4c4bd765fe4222f52dccc431 (2026-11-22T10:00:00Z)"}},
		{"modified", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261122100000-9efeac908160+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "9efeac908160196b4c4bd765fe4222f52dccc431"}, {Key: "vcs.modified", Value: "true"},
		}}, []string{"probe v0.0.0-20261122100000-9efeac908160+dirty",
			"commit:  9efeac908160196b4c4bd765fe4222f52dccc431, with uncommitted changes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines := strings.Split(versionText(tt.bi), "\n")
			if len(lines) != 5 || lines[4] != "" {
				t.Fatalf("want 4 lines, got %q", lines)
			}
			if diff := cmp.Diff(tt.want, lines[:2]); diff != "" {
				t.Errorf("version and commit (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(lines[2], "go:      go1.") {
				t.Errorf("go line %q", lines[2])
			}
			if lines[3] != plugins {
				t.Errorf("plugins line %q, want %q", lines[3], plugins)
			}
		})
	}
}

// TestVersionCommand runs `probe version` and `probe --version` on the
// built binary: both print what the toolchain recorded in it, as `go
// version -m` reads it, and the built-in plugins.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	bi, err := buildinfo.ReadFile(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	version, commit := bi.Main.Version, "unknown: built without version control information"
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			commit = s.Value
		}
	}
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := probe(t, nil, args...)
		wantExit(t, r, exitOK)
		outs = append(outs, r.stdout)
		lines := strings.Split(r.stdout, "\n")
		if len(lines) != 5 {
			t.Fatalf("probe %s: want 4 lines:\n%s", args[0], r.stdout)
		}
		for i, want := range []string{
			"probe " + version,
			"commit:  " + commit,
			fmt.Sprintf("go:      %s ", bi.GoVersion),
			pluginsLine(),
		} {
			if !strings.HasPrefix(lines[i], want) {
				t.Errorf("probe %s: line %d is %q, want it to start with %q", args[0], i+1, lines[i], want)
			}
		}
	}
	if outs[0] != outs[1] {
		t.Errorf("probe version and probe --version differ:\n%s\n%s", outs[0], outs[1])
	}
}

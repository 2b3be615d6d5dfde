package main

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkSummary is the last line of `probe plugins check`.
var checkSummary = regexp.MustCompile(`\n(\d+) checks: (\d+) passed, (\d+) failed, (\d+) skipped\n$`)

// TestPluginsCheck runs `probe plugins check` on the plugins of this
// repository that must pass it: the built-ins served by probe itself
// (--isolate), the banner example, the Python plugin and the tailscale
// plugin with their check files. Each row passes (or is skipped, as the check file says) and probe
// exits 0.
func TestPluginsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		checks  int // rows
		skipped int
	}{
		{"builtins", []string{"--isolate"}, 41, 2},
		{"banner", []string{bannerBin(t), "--config", "../../examples/plugins/banner/check.hcl"}, 14, 1},
		{"python-echo", []string{pythonEcho, "--config", "../../examples/plugins/python-echo/check.hcl"}, 14, 1},
		{"tailscale", []string{tailscalePlugin(t), "--config", "../../plugins/tailscale/check.hcl"}, 16, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, append([]string{"plugins", "check"}, tt.args...)...)
			wantExit(t, r, exitOK)
			m := checkSummary.FindStringSubmatch(r.stdout)
			want := []string{strconv.Itoa(tt.checks), strconv.Itoa(tt.checks - tt.skipped), "0", strconv.Itoa(tt.skipped)}
			if m == nil || !slices.Equal(m[1:], want) {
				t.Errorf("summary %q, want %v checks, passed, failed, skipped:\n%s", m, want, r.stdout)
			}
		})
	}
}

// TestPluginsCheckFails: a plugin that fails a check makes probe exit 1,
// the failed row saying why; bad usage exits 2.
func TestPluginsCheckFails(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, "plugins", "check", bannerBin(t))
	wantExit(t, r, exitFailed)
	want := `banner  handshake  configure       FAIL: the configuration does not fit the schema: expect: Missing required argument: ` +
		`The argument "expect" is required, but no definition was found. (give its attributes in a check file, --config)`
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "Error: 1 of 7 checks failed") {
		t.Errorf("stdout:\n%s\nstderr:\n%s\nwant the row:\n%s", r.stdout, r.stderr, want)
	}
	wrong := strings.Repeat("0", 64)
	r = probe(t, nil, "plugins", "check", bannerBin(t), "--sha256", wrong)
	wantExit(t, r, exitFailed)
	if want := "does not match its sha256 pin " + wrong + "; refusing to run it"; !strings.Contains(r.stdout, want) {
		t.Errorf("a wrong pin: stdout\n%s\nwant the start row to say %q", r.stdout, want)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no binary", nil, "give a plugin binary, or --isolate alone for the built-ins"},
		{"binary and isolate", []string{bannerBin(t), "--isolate"}, "give a plugin binary, or --isolate alone"},
		{"missing binary", []string{"./nosuch"}, "nosuch: no such file or directory"},
		{"bad check file", []string{bannerBin(t), "--config", writeFile(t, "check.hcl", `handshake "banner" { server = "gopher" }`)},
			`server "gopher": want one of [echo greeting tls http]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probe(t, nil, append([]string{"plugins", "check"}, tc.args...)...)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to say %q", r.stderr, tc.want)
			}
		})
	}
}

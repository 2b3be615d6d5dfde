package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/pluginhost"
)

// validRE is what `probe validate` prints of a valid file.
var validRE = regexp.MustCompile(`^\S+ is valid: ([1-9]\d*) pipelines, ([1-9]\d*) targets\.\n$`)

// TestExamples validates every example pipeline with probe laid out as the
// README's `make build` leaves it: probe-plugin-tailscale next to probe,
// found there and nowhere else (no PROBE_PLUGIN_PATH, an empty HOME). Every
// file is valid, with some pipelines and some targets.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.hcl")
	fleet, _ := filepath.Glob("../../examples/fleet/*.hcl")
	paths = append(paths, fleet...)
	if err != nil || len(paths) == 0 || len(fleet) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	bin := copyExe(t, probeBin, "probe", 0o755)
	tailscale, err := os.ReadFile(tailscalePlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(bin), pluginhost.BinaryPrefix+"tailscale"), tailscale, 0o755); err != nil {
		t.Fatal(err)
	}
	// lab.hcl reads the lab's CA file; the others need nothing.
	flags := map[string][]string{"lab.hcl": labVarFlags()}
	for _, path := range paths {
		t.Run(strings.TrimPrefix(path, "../../examples/"), func(t *testing.T) {
			t.Parallel()
			r := startOwn(t, bin, []string{"HOME=" + t.TempDir()}, append([]string{"validate", path}, flags[strings.TrimPrefix(path, "../../examples/")]...)...).wait(t)
			wantExit(t, r, exitOK)
			if !validRE.MatchString(r.stdout) || r.stderr != "" {
				t.Errorf("stdout %q, stderr %q; want it valid with some pipelines and targets, and nothing on stderr", r.stdout, r.stderr)
			}
		})
	}
}

// TestMissingPluginBinary validates and runs files whose plugin binary is
// nowhere on the search path: probe says where it looked and, for a plugin
// of this repository, how to build it.
func TestMissingPluginBinary(t *testing.T) {
	t.Parallel()
	home, extra := t.TempDir(), t.TempDir()
	searched := extra + " (PROBE_PLUGIN_PATH), " + filepath.Dir(probeBin) + " (next to probe), " +
		filepath.Join(home, ".probe", "plugins") + " (~/.probe/plugins); "
	unknown := filepath.Join(t.TempDir(), "unknown.hcl")
	if err := os.WriteFile(unknown, []byte(`resolver "r" { plugin = "nosuch" }`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"../../examples/tailnet.hcl", `Plugin "tailscale" could not be loaded: no probe-plugin-tailscale in ` + searched +
			"build it with `make build` in probe's repository (bin/probe-plugin-tailscale, next to bin/probe) or " +
			"`cd plugins/tailscale && go build -o ~/.probe/plugins/probe-plugin-tailscale ./cmd/probe-plugin-tailscale` " +
			"(plugins/tailscale/README.md), or put it in one of those directories, add its directory to PROBE_PLUGIN_PATH, " +
			"or give the plugin block a source."},
		{unknown, `There is no plugin named "nosuch". Available plugins: "dial-http-connect", "dial-socks5", "dial-tcp", "dial-udp", "dns-miekg", "dns-system", "grpc-health", "http", "http3", "icmp", "quic", "ssh", "starttls", "tls", "udp-payload". ` +
			"Looked for its binary: no probe-plugin-nosuch in " + searched +
			"put it in one of those directories, add its directory to PROBE_PLUGIN_PATH, or give the plugin block a source."},
	} {
		for _, cmd := range []string{"validate", "run"} {
			t.Run(cmd+" "+filepath.Base(tc.file), func(t *testing.T) {
				r := probe(t, []string{"HOME=" + home, pluginhost.PathEnv + "=" + extra}, cmd, tc.file)
				wantExit(t, r, exitUsage)
				// The diagnostics are wrapped to the terminal's width.
				if got := strings.Join(strings.Fields(r.stderr), " "); !strings.Contains(got, tc.want) {
					t.Errorf("stderr:\n%s\nwant it to say:\n%s", r.stderr, tc.want)
				}
			})
		}
	}
}

// tailscalePlugin builds probe-plugin-tailscale, which lives in a module of
// its own (plugins/tailscale), and returns its path in the Go build cache.
// The cache keeps the build: it takes about a second once `make build` has
// compiled the plugin, minutes on a cold cache. A failed build fails the
// test, it never skips: tailnet.hcl and infrastructure.hcl need the plugin.
func tailscalePlugin(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "tool", "-n", "probe-plugin-tailscale")
	cmd.Dir = "../../plugins/tailscale"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build probe-plugin-tailscale: %v", err)
	}
	return strings.TrimSpace(string(out))
}

package deptest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/probe-dev/probe/internal/deptest"
)

// TestDependencies checks the rules in this module; plugins/tailscale's
// internal/deptest checks them in that one.
func TestDependencies(t *testing.T) {
	deptest.Check(t, "../..")
}

// TestViolations checks that each rule finds what breaks it, and lets pass
// what it allows.
func TestViolations(t *testing.T) {
	const repo = deptest.Repo + "/"
	reach := map[string][]string{
		repo + "core/engine":            {repo + "core/engine", repo + "core/sdk"},
		repo + "core/sdk":               {repo + "core/sdk"},
		repo + "core/sdk/serve":         {repo + "core/sdk/serve", repo + "core/sdk"},
		repo + "core/pluginhost":        {repo + "core/pluginhost", repo + "core/config", repo + "core/sdk"},
		repo + "core/pluginrpc":         {repo + "core/pluginrpc", repo + "core/sdk", "google.golang.org/grpc"},
		"github.com/zclconf/go-cty/cty": {"github.com/zclconf/go-cty/cty"},
		"google.golang.org/grpc":        {"google.golang.org/grpc"},
		repo + "internal/lab":           {repo + "internal/lab"},
		repo + "internal/bench":         {repo + "internal/bench", repo + "plugins/builtins", repo + "plugins/tls", repo + "cmd/probe"},
		repo + "plugins/builtins":       {repo + "plugins/builtins", repo + "plugins/tls", repo + "plugins/dial-tcp", repo + "core/sdk"},
		repo + "plugins/tls":            {repo + "plugins/tls", repo + "core/sdk"},
		repo + "plugins/dial-tcp":       {repo + "plugins/dial-tcp", repo + "core/sdk"},
		"fmt":                           {"fmt"},
	}
	fn := func(p string) []string { return reach[p] }
	tests := []struct {
		name string
		file deptest.File
		want []string // a part of each violation, in order; none when it passes
	}{
		{"core package", deptest.File{Dir: "core/engine", Imports: []string{"fmt", repo + "core/sdk"}}, nil},
		{"core imports a plugin", deptest.File{Dir: "core/engine", Imports: []string{repo + "plugins/tls"}},
			[]string{"imported only through plugins/builtins", "core never depends on plugins"}},
		{"core imports the list", deptest.File{Dir: "core/engine", Imports: []string{repo + "plugins/builtins"}},
			[]string{"core never depends on plugins", "core never depends on plugins", "core never depends on plugins"}},
		{"core's in-package test imports the list", deptest.File{Dir: "core/engine", Test: true, Imports: []string{repo + "plugins/builtins"}},
			[]string{"core never depends on plugins", "core never depends on plugins", "core never depends on plugins"}},
		{"core's external test imports the list", deptest.File{Dir: "core/engine", Test: true, XTest: true, Imports: []string{repo + "plugins/builtins"}}, nil},
		{"core's external test imports a plugin", deptest.File{Dir: "core/engine", Test: true, XTest: true, Imports: []string{repo + "plugins/tls"}},
			[]string{"imported only through plugins/builtins", "never a plugin itself"}},
		{"core's test program imports the list", deptest.File{Dir: "core/pluginhost/testdata/x", TestData: true, Imports: []string{repo + "plugins/builtins"}}, nil},
		{"core depends on cmd", deptest.File{Dir: "core/engine", Test: true, XTest: true, Imports: []string{repo + "internal/bench"}},
			[]string{"core never depends on cmd"}},
		{"sdk", deptest.File{Dir: "core/sdk", Imports: []string{"fmt", "github.com/zclconf/go-cty/cty"}}, nil},
		{"sdk imports the host", deptest.File{Dir: "core/sdk", Imports: []string{repo + "core/pluginhost"}},
			[]string{"the sdk imports nothing else", "the sdk imports nothing else"}},
		{"sdk imports gRPC", deptest.File{Dir: "core/sdk", Imports: []string{"google.golang.org/grpc"}},
			[]string{"not its transport"}},
		{"sdk imports the transport", deptest.File{Dir: "core/sdk", Imports: []string{repo + "core/pluginrpc"}},
			[]string{"the sdk imports nothing else", "not its transport"}},
		{"serve imports the transport", deptest.File{Dir: "core/sdk/serve", Imports: []string{repo + "core/pluginrpc"}}, nil},
		{"sdk's tests import the host", deptest.File{Dir: "core/sdk", Test: true, XTest: true, Imports: []string{repo + "core/pluginhost"}}, nil},
		{"plugin", deptest.File{Dir: "plugins/tls", Imports: []string{"fmt", repo + "core/sdk"}}, nil},
		{"plugin's main", deptest.File{Dir: "plugins/tls/cmd/x", Imports: []string{repo + "plugins/tls", repo + "core/sdk/serve"}}, nil},
		{"plugin's test", deptest.File{Dir: "plugins/tls", Test: true, Imports: []string{repo + "internal/lab"}}, nil},
		{"plugin imports internal", deptest.File{Dir: "plugins/tls", Imports: []string{repo + "internal/lab"}},
			[]string{"a plugin imports core/sdk"}},
		{"plugin imports the core", deptest.File{Dir: "plugins/tls", Imports: []string{repo + "core/engine"}},
			[]string{"a plugin imports core/sdk"}},
		{"plugin imports a plugin", deptest.File{Dir: "plugins/tls", Imports: []string{repo + "plugins/dial-tcp"}},
			[]string{"imported only through plugins/builtins", "a plugin imports core/sdk", "depends on no other plugin"}},
		{"plugin's test imports a plugin", deptest.File{Dir: "plugins/tls", Test: true, Imports: []string{repo + "plugins/dial-tcp"}},
			[]string{"imported only through plugins/builtins", "a plugin imports core/sdk", "depends on no other plugin"}},
		{"example plugin imports a plugin", deptest.File{Dir: "examples/plugins/banner", Imports: []string{repo + "plugins/dial-tcp"}},
			[]string{"imported only through plugins/builtins", "a plugin imports core/sdk", "depends on no other plugin"}},
		{"the list", deptest.File{Dir: "plugins/builtins", Imports: []string{repo + "core/sdk", repo + "plugins/tls"}}, nil},
		{"the list imports the core", deptest.File{Dir: "plugins/builtins", Imports: []string{repo + "core/engine"}},
			[]string{"plugins/builtins imports core/sdk and the plugins it lists"}},
		{"a command imports a plugin", deptest.File{Dir: "cmd/probe", Imports: []string{repo + "plugins/tls"}},
			[]string{"imported only through plugins/builtins"}},
		{"a command imports the list", deptest.File{Dir: "cmd/probe", Imports: []string{repo + "plugins/builtins"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.file.Path = tt.file.Dir + "/x.go"
			got := deptest.Violations(tt.file, fn)
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.Contains(got[i], tt.want[i])
			}
			if !ok {
				t.Errorf("violations:\n%s\nwant %d, containing %q", strings.Join(got, "\n"), len(tt.want), tt.want)
			}
			if slices.ContainsFunc(got, func(v string) bool { return !strings.HasPrefix(v, tt.file.Path+": ") }) {
				t.Errorf("a violation does not start with the file's path: %q", got)
			}
		})
	}
}

package pluginhost_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/plugins/builtins"
)

// loaderFile is a pipeline file as a Go service embedding probe might load:
// a third-party plugin binary pinned by its sha256, a built-in isolated by
// its plugin block, and one in process. %[1]q is the banner binary, %[2]q
// its digest, %[3]q the lab's DNS server, %[4]q its CA file, %[5]d its TLS
// port.
const loaderFile = `
plugin "banner" {
  source = %[1]q
  sha256 = %[2]q
}
plugin "tls" { isolate = true }

resolver "lab" {
  plugin  = "dns-miekg"
  servers = [%[3]q]
}
dialer "tcp" { plugin = "dial-tcp" }
handshake "tls" {
  plugin  = "tls"
  ca_file = %[4]q
}
handshake "banner" {
  plugin = "banner"
  expect = "^SSH-"
}

pipeline "https" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}
target "api" {
  host     = "api.probe.test"
  port     = %[5]d
  pipeline = pipeline.https
}
`

// TestLoader loads a file through a Loader as an embedding service does,
// with the plugins of plugins/builtins and probe's binary serving them out
// of process: the pinned banner binary and the isolated tls run in plugin
// processes, the rest in process, and an attempt through them succeeds.
func TestLoader(t *testing.T) {
	ld := pluginhost.NewLoader(pluginhost.LoaderOptions{
		Log:           hclog.NewNullLogger(),
		Builtins:      builtins.Plugins(),
		BuiltinBinary: &pluginhost.Binary{Name: "builtin", Path: probeBin, Args: []string{"serve-builtin-plugins"}},
	})
	t.Cleanup(func() {
		if err := ld.Close(); err != nil {
			t.Errorf("close the loader: %v", err)
		}
	})
	plugins, err := ld.Builtins()
	if err != nil {
		t.Fatal(err)
	}
	in := builtins.Plugins()
	if len(plugins) != len(in) {
		t.Fatalf("Builtins: %d plugins, want the %d built-ins", len(plugins), len(in))
	}
	src := fmt.Sprintf(loaderFile, bannerBin, sha256File(t, bannerBin), testLab.DNS.Addr, testLab.CAFile, testLab.TLS.Addr.Port())
	l := config.NewLoader(config.Options{Plugins: plugins, Loader: ld})
	f, diags := l.LoadSource("service.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	t.Cleanup(func() { _ = f.Close() })

	res := engine.New(f.Options).Run(t.Context(), f.Targets)
	if res.Summary.Failed != 0 {
		t.Fatalf("attempt failed: %v", res.Summary.FailuresByClass)
	}
	// The isolated tls is the binary's, not the one in process: loading it
	// again shares the process the file started.
	tls, err := ld.LoadPlugin(config.PluginDecl{Name: "tls", Isolate: true})
	if err != nil {
		t.Fatal(err)
	}
	if tls == plugins["tls"] {
		t.Error("the isolated tls is the plugin in process")
	}
}

// TestLoaderErrors checks what a Loader refuses, and that each error says
// why.
func TestLoaderErrors(t *testing.T) {
	t.Setenv(pluginhost.PathEnv, t.TempDir())
	t.Setenv("HOME", t.TempDir())
	ld := pluginhost.NewLoader(pluginhost.LoaderOptions{
		Builtins:   builtins.Plugins(),
		BuildHints: map[string]string{"missing": "`make missing`"},
	})
	t.Cleanup(func() { _ = ld.Close() })
	wrong := strings.Repeat("0", 64)
	tests := []struct {
		name string
		decl config.PluginDecl
		want string
	}{
		{"isolated built-in without a binary serving the built-ins", config.PluginDecl{Name: "tls", Isolate: true},
			"no binary serves the built-in plugins out of process here, so they cannot be isolated"},
		{"wrong pin", config.PluginDecl{Name: "banner", Source: bannerBin, SHA256: wrong},
			"does not match its sha256 pin " + wrong},
		{"missing source", config.PluginDecl{Name: "banner", Source: "probe-plugin-banner", Dir: t.TempDir()},
			"no such file or directory"},
		{"not on the search path", config.PluginDecl{Name: "missing"}, "build it with `make missing`, or put it in one of those directories"},
		{"binary serving another name", config.PluginDecl{Name: "other", Source: bannerBin},
			bannerBin + ` serves no plugin "other", only [banner]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ld.LoadPlugin(tt.decl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadPlugin: %v, %v; want an error containing %q", p, err, tt.want)
			}
		})
	}
	if _, err := ld.LoadPlugin(config.PluginDecl{Name: "missing"}); !errors.As(err, new(*pluginhost.NotFoundError)) {
		t.Errorf("a plugin on no directory of the search path: %v, want a *NotFoundError", err)
	}
}

// TestLoaderSearchPath finds a plugin a file names without a plugin block
// on PROBE_PLUGIN_PATH, as probe-plugin-NAME.
func TestLoaderSearchPath(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(bannerBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe-plugin-banner"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(pluginhost.PathEnv, dir)
	ld := pluginhost.NewLoader(pluginhost.LoaderOptions{Builtins: builtins.Plugins()})
	t.Cleanup(func() { _ = ld.Close() })
	p, err := ld.LoadPlugin(config.PluginDecl{Name: "banner"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Info.Name != "banner" || p.Info.Version != "1.0.0" {
		t.Errorf("loaded %+v, want banner 1.0.0", p.Info)
	}
}

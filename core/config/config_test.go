package config

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// The test plugins declare schemas like the built-ins do; configuration is
// all the loader exercises, so their components never run.
type nop struct{}

func (nop) Resolve(context.Context, *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	return nil, fmt.Errorf("not for running")
}
func (nop) Dial(context.Context, *sdk.DialRequest) (*sdk.DialResponse, error) {
	return nil, fmt.Errorf("not for running")
}
func (nop) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	return nil, fmt.Errorf("not for running")
}

func testPlugins() map[string]*sdk.Plugin {
	dns := &sdk.Plugin{
		Info: sdk.Info{Name: "dns"},
		ResolverSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "servers", Type: cty.List(cty.String), Required: true},
			{Name: "transport", Type: cty.String, Default: cty.StringVal("udp")},
		}},
		NewResolver: func(cfg cty.Value) (sdk.Resolver, error) {
			if tr := sdk.String(cfg, "transport"); tr != "udp" && tr != "tcp" {
				return nil, sdk.AttrErrorf("transport", "Invalid transport", "transport must be udp or tcp, got %q.", tr)
			}
			return nop{}, nil
		},
	}
	tcp := &sdk.Plugin{Info: sdk.Info{Name: "tcp"}, NewDialer: func(cty.Value) (sdk.Dialer, error) { return nop{}, nil }}
	ping := &sdk.Plugin{Info: sdk.Info{Name: "ping"}, NewDialer: func(cty.Value) (sdk.Dialer, error) { return nop{}, nil },
		DialerConn: sdk.ConnNone}
	quic := &sdk.Plugin{Info: sdk.Info{Name: "quic"}, NewDialer: func(cty.Value) (sdk.Dialer, error) { return nop{}, nil },
		DialerConn: sdk.ConnQUIC}
	h3 := &sdk.Plugin{Info: sdk.Info{Name: "h3"}, NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return nop{}, nil },
		HandshakeConn: sdk.ConnQUIC}
	tls := &sdk.Plugin{
		Info:            sdk.Info{Name: "tls"},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{{Name: "server_name", Type: cty.String}}},
		NewHandshaker:   func(cty.Value) (sdk.Handshaker, error) { return nop{}, nil },
	}
	http := &sdk.Plugin{
		Info:            sdk.Info{Name: "http"},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{{Name: "path", Type: cty.String, Default: cty.StringVal("/")}}},
		NewHandshaker:   func(cfg cty.Value) (sdk.Handshaker, error) { return pathHandshaker{path: sdk.String(cfg, "path")}, nil },
	}
	return map[string]*sdk.Plugin{"dns": dns, "tcp": tcp, "ping": ping, "quic": quic, "h3": h3, "tls": tls, "http": http}
}

// pathHandshaker is the test http plugin's handshake: it keeps its path, for
// tests to check which configuration each instance got.
type pathHandshaker struct {
	nop
	path string
}

// TestErrorFixtures loads each file of testdata/errors, in which every line
// that must draw an error ends in "# ERROR: <summary>", and checks that
// exactly those errors are reported, on those lines.
func TestErrorFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := expectedErrors(t, path)
			l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
			f, diags := l.LoadFile(path)
			if f != nil {
				t.Errorf("LoadFile returned a file despite errors")
			}
			var got []string
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no source range", d.Summary)
					continue
				}
				got = append(got, fmt.Sprintf("%d: %s", d.Subject.Start.Line, d.Summary))
			}
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				var buf bytes.Buffer
				_ = l.WriteDiagnostics(&buf, diags, 100, false)
				t.Errorf("errors mismatch (-want +got):\n%s\nall diagnostics:\n%s", diff, buf.String())
			}
		})
	}
}

func expectedErrors(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if _, summary, ok := strings.Cut(sc.Text(), "# ERROR: "); ok {
			want = append(want, fmt.Sprintf("%d: %s", line, strings.TrimSpace(summary)))
		}
	}
	sort.Strings(want)
	return want
}

func TestDiagnosticText(t *testing.T) {
	l := NewLoader(Options{Plugins: testPlugins()})
	_, diags := l.LoadFile("testdata/errors/misspelt_attribute.hcl")
	var buf bytes.Buffer
	if err := l.WriteDiagnostics(&buf, diags, 100, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Error: Unsupported argument",
		`on testdata/errors/misspelt_attribute.hcl line 3, in resolver "lab":`,
		`3:   servr  = ["127.0.0.1:53"]`,
		`An argument named "servr" is not expected here. Did you mean "servers"?`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("diagnostic text lacks %q:\n%s", want, buf.String())
		}
	}
}

const validFile = `
variable "host" { default = "default.example" }
variable "port" {
  type    = number
  default = 1
}
variable "region" {}

run {
  mode        = "sequential"
  concurrency = 8
  attempts    = 3
  interval    = "200ms"
  timeout     = "2s"
}

resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
  match   = ["*.probe.test", "127.0.0.0/8"]
}
resolver "any" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }
handshake "tls" { plugin = "tls" }

pipeline "https" {
  resolvers  = [resolver.lab, resolver.any]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "main" {
  host     = var.host
  port     = var.port
  pipeline = pipeline.https
  attempts = 5
  timeout  = "1s"
}

target "env" {
  host     = "${env("PROBE_TEST_HOST")}.${var.region}"
  port     = 443
  pipeline = pipeline.https
}

target "fleet" {
  for_each = { b = 2, a = 1 }
  host     = "${each.key}.probe.test"
  port     = 8000 + each.value
  pipeline = pipeline.https
}

target "list" {
  for_each = ["x", "y"]
  host     = each.value
  port     = 80
  pipeline = pipeline.https
}
`

func TestLoadValid(t *testing.T) {
	dir := t.TempDir()
	varFile := filepath.Join(dir, "vars.hcl")
	if err := os.WriteFile(varFile, []byte("port = 3\nhost = \"file.example\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type tgt struct {
		Name, Host string
		Port       uint16
		Attempts   int
		Timeout    time.Duration
	}
	tests := []struct {
		name     string
		vars     map[string]string
		varFiles []string
		environ  []string
		main     tgt
	}{
		{
			name: "defaults",
			vars: map[string]string{"region": "eu"},
			main: tgt{"main", "default.example", 1, 5, time.Second},
		},
		{
			name:    "environment over default",
			environ: []string{"PROBE_VAR_port=2", "PROBE_VAR_region=eu", "PROBE_VAR_unknown=ignored"},
			main:    tgt{"main", "default.example", 2, 5, time.Second},
		},
		{
			name:     "var file over environment",
			environ:  []string{"PROBE_VAR_port=2", "PROBE_VAR_region=eu"},
			varFiles: []string{varFile},
			main:     tgt{"main", "file.example", 3, 5, time.Second},
		},
		{
			name:     "-var over var file",
			environ:  []string{"PROBE_VAR_port=2"},
			varFiles: []string{varFile},
			vars:     map[string]string{"port": "4", "region": "eu"},
			main:     tgt{"main", "file.example", 4, 5, time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(Options{
				Plugins: testPlugins(), Vars: tt.vars, VarFiles: tt.varFiles,
				Environ: func() []string { return tt.environ },
				Getenv: func(k string) string {
					if k == "PROBE_TEST_HOST" {
						return "from-env"
					}
					return ""
				},
			})
			f, diags := l.LoadSource("valid.hcl", []byte(validFile))
			if diags.HasErrors() {
				var buf bytes.Buffer
				_ = l.WriteDiagnostics(&buf, diags, 100, false)
				t.Fatalf("unexpected errors:\n%s", buf.String())
			}
			var got []tgt
			for _, tg := range f.Targets {
				got = append(got, tgt{tg.Name, tg.Host, tg.Port, tg.Attempts, tg.Timeout})
				if tg.Pipeline != f.Pipelines["https"] {
					t.Errorf("target %s: pipeline %v, want https", tg.Name, tg.Pipeline)
				}
			}
			want := []tgt{
				tt.main,
				{"env", "from-env.eu", 443, 0, 0},
				{"fleet[a]", "a.probe.test", 8001, 0, 0},
				{"fleet[b]", "b.probe.test", 8002, 0, 0},
				{"list[x]", "x", 80, 0, 0},
				{"list[y]", "y", 80, 0, 0},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
			wantOpts := engine.Options{Mode: engine.Sequential, Concurrency: 8, Attempts: 3,
				Interval: 200 * time.Millisecond, Timeout: 2 * time.Second}
			if diff := cmp.Diff(wantOpts, f.Options); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
			p := f.Pipelines["https"]
			if len(p.Resolvers) != 2 || p.Dialer.Plugin != "tcp" || len(p.Handshakes) != 1 || p.Handshakes[0].Name != "tls" {
				t.Fatalf("pipeline https = %+v", p)
			}
			for host, want := range map[string]string{"api.probe.test": "lab", "127.0.0.9": "lab", "example.com": "any", "10.0.0.1": "any"} {
				if got := p.Route(host).Name; got != want {
					t.Errorf("Route(%q) = %s, want %s", host, got, want)
				}
			}
		})
	}
}

func TestUndeclaredVar(t *testing.T) {
	l := NewLoader(Options{Plugins: testPlugins(), Vars: map[string]string{"regoin": "eu"}})
	_, diags := l.LoadSource("v.hcl", []byte(`variable "region" { default = "x" }`))
	if len(diags) != 1 || diags[0].Summary != "Value for undeclared variable" || !strings.Contains(diags[0].Detail, `Did you mean "region"?`) {
		t.Errorf("diags = %v", diags)
	}
}

// recordingLoader serves plugin "banner" from any source but "broken", and
// refuses others.
type recordingLoader struct{ decls []PluginDecl }

func (l *recordingLoader) LoadPlugin(d PluginDecl) (*sdk.Plugin, error) {
	l.decls = append(l.decls, d)
	if d.Name != "banner" || d.Source == "broken" {
		return nil, fmt.Errorf("no probe-plugin-%s on the search path", d.Name)
	}
	return &sdk.Plugin{Info: sdk.Info{Name: "banner"}, NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return nop{}, nil }}, nil
}

func TestPluginBlocks(t *testing.T) {
	src := `
plugin "banner" {
  source  = "bin/probe-plugin-banner"
  sha256  = "abc"
  isolate = false
  env     = ["TS_AUTHKEY", "https_proxy"]
}
handshake "ssh" { plugin = "banner" }
handshake "other" {
  plugin = "missing" # not declared: the loader searches for it
}
`
	l := &recordingLoader{}
	_, diags := NewLoader(Options{Plugins: testPlugins(), Loader: l}).LoadSource("dir/p.hcl", []byte(src))
	want := []PluginDecl{
		{Name: "banner", Source: "bin/probe-plugin-banner", Dir: "dir", SHA256: "abc", Env: []string{"TS_AUTHKEY", "https_proxy"}},
		{Name: "missing", Dir: "dir"},
	}
	if diff := cmp.Diff(want, l.decls); diff != "" {
		t.Errorf("loader calls (-want +got):\n%s", diff)
	}
	if got := l.decls[0].SourcePath(); got != "dir/bin/probe-plugin-banner" {
		t.Errorf("SourcePath = %q", got)
	}
	if len(diags) != 1 || diags[0].Summary != "Unknown plugin" || diags[0].Subject.Start.Line != 10 ||
		!strings.Contains(diags[0].Detail, "no probe-plugin-missing on the search path") {
		t.Errorf("diags = %v", diags)
	}
}

func TestPluginEnv(t *testing.T) {
	tests := []struct {
		env, summary string
	}{
		{`["A=B"]`, "Invalid environment variable name"},
		{`["1PASSWORD"]`, "Invalid environment variable name"},
		{`[""]`, "Invalid environment variable name"},
		{`[null]`, "Invalid environment variable name"},
		{`"TS_AUTHKEY"`, "Incorrect attribute value type"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			src := "plugin \"banner\" {\n  env = " + tt.env + "\n}\n"
			l := &recordingLoader{}
			_, diags := NewLoader(Options{Plugins: testPlugins(), Loader: l}).LoadSource("p.hcl", []byte(src))
			if len(diags) != 1 || diags[0].Summary != tt.summary || diags[0].Subject.Start.Line != 2 {
				t.Errorf("diags = %v, want one %q on line 2", diags, tt.summary)
			}
			if len(l.decls) != 0 {
				t.Errorf("loaded %+v despite the error", l.decls)
			}
		})
	}
}

func TestSensitiveVariables(t *testing.T) {
	src := `
variable "token" {
  sensitive = true
  default   = "hunter2-secret"
}
resolver "lab" {
  plugin    = "dns"
  servers   = ["127.0.0.1:53"]
  transport = var.token
}
target "t" {
  host     = "a.example"
  port     = var.token
  pipeline = pipeline.p
}
`
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	_, diags := l.LoadSource("s.hcl", []byte(src))
	var buf bytes.Buffer
	_ = l.WriteDiagnostics(&buf, diags, 100, false)
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("diagnostics show the sensitive value:\n%s", out)
	}
	for _, want := range []string{"Invalid transport", "(sensitive)", "Incorrect attribute value type"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, out)
		}
	}

	ok := `
variable "token" {
  sensitive = true
  default   = "hunter2-secret"
}
variable "short" {
  sensitive = true
  default   = "ab"
}`
	f, diags := NewLoader(Options{Plugins: testPlugins()}).LoadSource("ok.hcl", []byte(ok))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if diff := cmp.Diff([]string{"hunter2-secret"}, f.Options.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
}

// TestSensitiveDerived: the values a file derives from a sensitive
// variable carry HCL's sensitive mark, and their final strings are secrets
// too, wherever the file uses them (a component's configuration, a host, a
// for_each key, each.key and each.value of a for_each that holds one);
// values the file derives from nothing sensitive are not.
func TestSensitiveDerived(t *testing.T) {
	src := `
variable "token" {
  sensitive = true
  default   = "hunter2"
}
variable "plain" { default = "public-value" }
resolver "lab" {
  plugin  = "dns"
  servers = ["${var.token}-x:53", upper(var.token), var.plain]
}
dialer "tcp" { plugin = "tcp" }
handshake "http" {
  plugin = "http"
  path   = "/p?auth=${base64encode("user:${var.token}")}"
}
pipeline "p" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.http]
}
target "t" {
  for_each = toset([format("k-%s", var.token)])
  host     = "${replace(var.token, "2", "3")}.example"
  port     = 443
  pipeline = pipeline.p
}
target "u" {
  for_each = { a = var.token }
  host     = "${each.key}.${each.value}.each"
  port     = 443
  pipeline = pipeline.p
}
`
	f, diags := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }}).LoadSource("d.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []string{"hunter2", "hunter2-x:53", "HUNTER2", "/p?auth=dXNlcjpodW50ZXIy", "k-hunter2", "hunter3.example", "a.hunter2.each"}
	if diff := cmp.Diff(want, f.Options.Secrets, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if got := f.Sensitive("p"); len(got) != 2 {
		t.Errorf("pipeline p's sensitive components are %q, want the resolver and the handshake", got)
	}
	if name := f.Targets[0].Name; name != "t[k-hunter2]" {
		t.Errorf("target name %q", name)
	}
}

// TestSensitiveNumbers: a sensitive variable of type number is redacted in
// diagnostics as a string is, wherever one quotes it (a port out of range,
// a plugin rejecting it as a string, a timeout), and in outputs.
func TestSensitiveNumbers(t *testing.T) {
	src := `
variable "pin" {
  type      = number
  sensitive = true
  default   = 987654
}
resolver "lab" {
  plugin    = "dns"
  servers   = ["127.0.0.1:53"]
  transport = var.pin
}
target "t" {
  host     = "a.example"
  port     = var.pin
  timeout  = var.pin
  pipeline = pipeline.p
}
`
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	_, diags := l.LoadSource("n.hcl", []byte(src))
	var buf bytes.Buffer
	_ = l.WriteDiagnostics(&buf, diags, 100, false)
	out := buf.String()
	if strings.Contains(out, "987654") {
		t.Errorf("diagnostics show the sensitive number:\n%s", out)
	}
	for _, want := range []string{"Invalid transport", "Invalid port", "Invalid duration"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "(sensitive)"); n != 3 {
		t.Errorf("%d redactions, want 3:\n%s", n, out)
	}
}

// TestSensitivePipelines: a pipeline whose components' configuration holds
// a value derived from a sensitive variable (as is, in a template, through a
// function, in a list) says which components do; others, and values of
// variables not declared sensitive, carry nothing.
func TestSensitivePipelines(t *testing.T) {
	src := `
variable "token" {
  sensitive = true
  default   = "hunter2-secret"
}
variable "server" {
  sensitive = true
  default   = "127.0.0.1:5353"
}
variable "name" { default = "plain.example" }
resolver "public" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
resolver "private" {
  plugin  = "dns"
  servers = [var.server]
}
dialer "tcp" { plugin = "tcp" }
handshake "templated" {
  plugin      = "tls"
  server_name = "x-${var.token}.example"
}
handshake "function" {
  plugin      = "tls"
  server_name = upper(var.token)
}
handshake "plain" {
  plugin      = "tls"
  server_name = var.name
}
pipeline "secret" {
  resolvers  = [resolver.public]
  dialer     = dialer.tcp
  handshakes = [handshake.plain, handshake.function, handshake.templated]
}
pipeline "dns" {
  resolvers = [resolver.private, resolver.public, resolver.private]
  dialer    = dialer.tcp
}
pipeline "plain" {
  resolvers  = [resolver.public]
  dialer     = dialer.tcp
  handshakes = [handshake.plain]
}
`
	f, diags := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }}).LoadSource("s.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for pipeline, want := range map[string][]string{
		"secret": {"handshake.function", "handshake.templated"},
		"dns":    {"resolver.private"},
		"plain":  nil,
		"nope":   nil,
	} {
		if diff := cmp.Diff(want, f.Sensitive(pipeline)); diff != "" {
			t.Errorf("Sensitive(%q) (-want +got):\n%s", pipeline, diff)
		}
	}
}

func TestFailedPluginBlockReportedOnce(t *testing.T) {
	src := `
plugin "banner" {
  source = "broken"
}
handshake "ssh" { plugin = "banner" }
`
	_, diags := NewLoader(Options{Plugins: testPlugins(), Loader: &recordingLoader{}}).LoadSource("p.hcl", []byte(src))
	if len(diags) != 1 || diags[0].Summary != "Failed to load plugin" {
		t.Errorf("diags = %v, want only the plugin block's error", diags)
	}
}

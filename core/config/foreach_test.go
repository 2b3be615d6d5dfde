package config

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// forEachHeader declares a resolver and a dialer for the cases below.
const forEachHeader = `
resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }
handshake "tls" { plugin = "tls" }
`

// TestForEachBlocks expands for_each on component and pipeline blocks and
// checks every pipeline the file made: its name, its stages by instance
// name, each http handshake's path as its plugin was configured, and the
// pipeline each target got.
func TestForEachBlocks(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// pipelines: name → its stages, "resolver lab", "dialer tcp",
		// "handshake page[/api] path=/api".
		pipelines map[string][]string
		targets   []string // "NAME → PIPELINE"
	}{
		{
			name: "one list for handshakes, pipelines and targets",
			src: `
variable "paths" { default = ["/", "/healthz", "/api/v1/status"] }
handshake "page" {
  for_each = toset(var.paths)
  plugin   = "http"
  path     = each.value
}
pipeline "page" {
  for_each   = toset(var.paths)
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.page[each.key]]
}
target "site" {
  for_each = toset(var.paths)
  host     = "www.example.com"
  port     = 443
  pipeline = pipeline.page[each.value]
}`,
			pipelines: map[string][]string{
				"page[/]":              {"resolver lab", "dialer tcp", "handshake tls", "handshake page[/] path=/"},
				"page[/healthz]":       {"resolver lab", "dialer tcp", "handshake tls", "handshake page[/healthz] path=/healthz"},
				"page[/api/v1/status]": {"resolver lab", "dialer tcp", "handshake tls", "handshake page[/api/v1/status] path=/api/v1/status"},
			},
			targets: []string{"site[/] → page[/]", "site[/api/v1/status] → page[/api/v1/status]", "site[/healthz] → page[/healthz]"},
		},
		{
			name: "a map's values choose the pipeline, literal keys pick one instance",
			src: `
handshake "page" {
  for_each = { home = "/", health = "/healthz" }
  plugin   = "http"
  path     = each.value
}
pipeline "page" {
  for_each   = { home = "/", health = "/healthz" }
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.page[each.key]]
}
pipeline "health" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.page["health"]]
}
target "t" {
  for_each = { a = "home", b = "health", c = "home" }
  host     = "${each.key}.example.com"
  port     = 443
  pipeline = pipeline.page[each.value]
}
target "direct" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.page["home"]
}`,
			pipelines: map[string][]string{
				"page[home]":   {"resolver lab", "dialer tcp", "handshake page[home] path=/"},
				"page[health]": {"resolver lab", "dialer tcp", "handshake page[health] path=/healthz"},
				"health":       {"resolver lab", "dialer tcp", "handshake tls", "handshake page[health] path=/healthz"},
			},
			targets: []string{"t[a] → page[home]", "t[b] → page[health]", "t[c] → page[home]", "direct → page[home]"},
		},
		{
			name: "resolvers and dialers too, keys by index",
			src: `
resolver "region" {
  for_each = { eu = "10.1.0.0/16", us = "10.2.0.0/16" }
  plugin   = "dns"
  servers  = ["127.0.0.1:53"]
  match    = [each.value]
}
dialer "d" {
  for_each = [{ name = "first" }, { name = "second" }]
  plugin   = "tcp"
}
handshake "page" {
  for_each = [{ path = "/a" }, { path = "/b" }]
  plugin   = "http"
  path     = each.value.path
}
pipeline "p" {
  for_each   = toset(["0", "1"])
  resolvers  = [resolver.region["eu"], resolver.region["us"], resolver.lab]
  dialer     = dialer.d[each.key]
  handshakes = [handshake.page[tonumber(each.key)]]
}
target "t" {
  host     = "10.2.0.1"
  port     = 80
  pipeline = pipeline.p[1]
}`,
			pipelines: map[string][]string{
				"p[0]": {"resolver region[eu] match=10.1.0.0/16", "resolver region[us] match=10.2.0.0/16", "resolver lab", "dialer d[0]", "handshake page[0] path=/a"},
				"p[1]": {"resolver region[eu] match=10.1.0.0/16", "resolver region[us] match=10.2.0.0/16", "resolver lab", "dialer d[1]", "handshake page[1] path=/b"},
			},
			targets: []string{"t → p[1]"},
		},
		{
			name: "an empty for_each makes nothing",
			src: `
handshake "page" {
  for_each = toset([])
  plugin   = "http"
}
pipeline "page" {
  for_each   = {}
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.page[each.key]]
}
pipeline "plain" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "t" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.plain
}`,
			pipelines: map[string][]string{"plain": {"resolver lab", "dialer tcp"}},
			targets:   []string{"t → plain"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
			f, diags := l.LoadSource("for_each.hcl", []byte(forEachHeader+tt.src))
			if len(diags) > 0 {
				var buf bytes.Buffer
				_ = l.WriteDiagnostics(&buf, diags, 100, false)
				t.Fatalf("diagnostics:\n%s", buf.String())
			}
			t.Cleanup(func() { _ = f.Close() })
			got := map[string][]string{}
			for name, p := range f.Pipelines {
				if p.Name != name {
					t.Errorf("pipeline %q is named %q", name, p.Name)
				}
				var stages []string
				for _, r := range p.Resolvers {
					s := "resolver " + r.Name
					if m := r.Match(); len(m) > 0 {
						s += " match=" + strings.Join(m, ",")
					}
					stages = append(stages, s)
				}
				stages = append(stages, "dialer "+p.Dialer.Name)
				for _, h := range p.Handshakes {
					s := "handshake " + h.Name
					if ph, ok := h.Component.(pathHandshaker); ok {
						s += " path=" + ph.path
					}
					stages = append(stages, s)
				}
				got[name] = stages
			}
			if diff := cmp.Diff(tt.pipelines, got); diff != "" {
				t.Errorf("pipelines (-want +got):\n%s", diff)
			}
			var targets []string
			for _, tg := range f.Targets {
				if f.Pipelines[tg.Pipeline.Name] != tg.Pipeline {
					t.Errorf("target %s: its pipeline %q is not the file's", tg.Name, tg.Pipeline.Name)
				}
				targets = append(targets, fmt.Sprintf("%s → %s", tg.Name, tg.Pipeline.Name))
			}
			if diff := cmp.Diff(tt.targets, targets); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForEachInstancesShareNothing checks that each instance of a handshake
// block is a component of its own, configured once and closed with the file.
func TestForEachInstancesShareNothing(t *testing.T) {
	src := forEachHeader + `
handshake "page" {
  for_each = toset(["/a", "/b", "/c"])
  plugin   = "http"
  path     = each.value
}`
	f, diags := NewLoader(Options{Plugins: testPlugins()}).LoadSource("p.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var paths []string
	for _, c := range f.components {
		if ph, ok := c.(pathHandshaker); ok {
			paths = append(paths, ph.path)
		}
	}
	if diff := cmp.Diff([]string{"/a", "/b", "/c"}, paths); diff != "" {
		t.Errorf("configured http handshakes (-want +got):\n%s", diff)
	}
}

// TestForEachDiagnosticText checks the words of the for_each reference
// errors: the instance to write instead, the keys there are, and "Did you
// mean", each said once although the reference is evaluated per instance.
func TestForEachDiagnosticText(t *testing.T) {
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	_, diags := l.LoadFile("testdata/errors/for_each_refs.hcl")
	var buf bytes.Buffer
	if err := l.WriteDiagnostics(&buf, diags, 400, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`on testdata/errors/for_each_refs.hcl line 14, in handshake "tls":`,
		`each.key and each.value exist only in a block with for_each, where they are the key and value of the instance; this handshake block has no for_each.`,
		`The for_each value gives the key "/a" more than once, and each instance needs a key of its own.`,
		`handshake.page has for_each; refer to one instance, such as handshake.page["/"].`,
		`handshake.page has no instance with the key "/helthz"; its keys are "/", "/api", "/healthz". Did you mean "/healthz"?`,
		`handshake.page has no instance with the key "/login"; its keys are "/", "/api", "/healthz".`,
		`dialer.tcp has no for_each, so it is a single dialer: refer to it as dialer.tcp.`,
		`pipeline.page has for_each; refer to one instance, such as pipeline.page["/"].`,
		`An instance key is a string, such as each.key; got tuple.`,
	} {
		if strings.Count(out, want) != 1 {
			t.Errorf("diagnostics say %q %d times, want once:\n%s", want, strings.Count(out, want), out)
		}
	}
}

// TestForEachManyKeys checks that an unknown key's error names ten keys and
// counts the rest, not a thousand of them.
func TestForEachManyKeys(t *testing.T) {
	src := forEachHeader + `
pipeline "p" {
  for_each  = toset([for i in range(1000) : format("k%04d", i)])
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "t" {
  host     = "example.com"
  port     = 443
  pipeline = pipeline.p["k0999x"]
}`
	_, diags := NewLoader(Options{Plugins: testPlugins()}).LoadSource("p.hcl", []byte(src))
	want := `pipeline.p has no instance with the key "k0999x"; its keys are "k0000", "k0001", "k0002", "k0003", "k0004", ` +
		`"k0005", "k0006", "k0007", "k0008", "k0009" and 990 more. Did you mean "k0999"?`
	if len(diags) != 1 || diags[0].Summary != "Unknown instance key" || diags[0].Detail != want {
		t.Errorf("diags = %v, want one Unknown instance key: %s", diags, want)
	}
}

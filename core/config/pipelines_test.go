package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
)

func TestAddressPolicy(t *testing.T) {
	src := `
resolver "lab" {
  plugin  = "dns"
  servers = ["127.0.0.1:53"]
}
dialer "tcp" { plugin = "tcp" }
pipeline "default" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
pipeline "all" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "all"
}
pipeline "he" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "happy-eyeballs"
}
`
	l := NewLoader(Options{Plugins: testPlugins()})
	f, diags := l.LoadSource("policy.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	got := map[string]engine.AddressPolicy{}
	for name, p := range f.Pipelines {
		got[name] = p.AddressPolicy
	}
	want := map[string]engine.AddressPolicy{"default": engine.AddressFirst, "all": engine.AddressAll, "he": engine.AddressHappyEyeballs}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
}

func TestDiagnosticDetails(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"testdata/errors/unmatched_host.hcl", []string{
			`on testdata/errors/unmatched_host.hcl line 34, in target "web":`,
			`The host "www.example.com" matches none of the resolvers of pipeline "private": ` +
				`resolver.tailnet (match = ["100.64.0.0/10", "*.ts.net"]), resolver.corp (match = ["*.corp.example"]).`,
			`The host "10.0.0.1" matches none`,
		}},
		{"testdata/errors/address_policy.hcl", []string{
			`The address_policy must be one of "first", "all", "happy-eyeballs"; got "happy-eyeball". Did you mean "happy-eyeballs"?`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			l := NewLoader(Options{Plugins: testPlugins()})
			_, diags := l.LoadFile(tt.file)
			var buf bytes.Buffer
			if err := l.WriteDiagnostics(&buf, diags, 400, false); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("diagnostics lack %q:\n%s", want, buf.String())
				}
			}
			if strings.Contains(buf.String(), `"100.64.0.7"`) || strings.Contains(buf.String(), `"db.corp.example" matches`) {
				t.Errorf("a host that matches a resolver drew an error:\n%s", buf.String())
			}
		})
	}
}

package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// discoveryFile makes a target per element of list (an expression), named
// by its address, with the element's host and port.
func discoveryFile(list string) string {
	return forEachHeader + `
pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "sd" {
  for_each = { for t in ` + list + ` : t.address => t }
  host     = each.value.host
  port     = each.value.port
  pipeline = pipeline.tcp
}
`
}

// loadDiscovery loads src and returns its targets as "NAME host:port" and
// its Discovery, or the diagnostics' text.
func loadDiscovery(t *testing.T, src string) ([]string, Discovery, string) {
	t.Helper()
	l := NewLoader(Options{Plugins: testPlugins(), Environ: func() []string { return nil }})
	f, diags := l.LoadSource("discovery.hcl", []byte(src))
	if len(diags) > 0 {
		var buf bytes.Buffer
		_ = l.WriteDiagnostics(&buf, diags, 200, false)
		return nil, Discovery{}, buf.String()
	}
	t.Cleanup(func() { _ = f.Close() })
	var got []string
	for _, tg := range f.Targets {
		got = append(got, fmt.Sprintf("%s %s:%d", tg.Name, tg.Host, tg.Port))
	}
	return got, f.Discovery, ""
}

// TestFileSD reads Prometheus file_sd lists, JSON and YAML, into for_each.
func TestFileSD(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	jsonList := write("targets.json", `[
  {"targets": ["api.example.com:443", "10.0.0.5:8080"], "labels": {"env": "prod"}},
  {"targets": ["[2001:db8::1]:443"]}
]`)
	yamlList := write("targets.yml", "- targets: ['db.example.com:5432']\n  labels:\n    env: staging\n")
	want := []string{"sd[10.0.0.5:8080] 10.0.0.5:8080", "sd[[2001:db8::1]:443] 2001:db8::1:443", "sd[api.example.com:443] api.example.com:443"}
	got, disc, diags := loadDiscovery(t, discoveryFile(fmt.Sprintf("file_sd(%q)", jsonList)))
	if diags != "" {
		t.Fatal(diags)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Discovery{Files: []string{jsonList}}, disc); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}
	// The labels, and YAML.
	got, _, diags = loadDiscovery(t, discoveryFile(fmt.Sprintf("[for t in concat(file_sd(%q), file_sd(%q)) : t if lookup(t.labels, \"env\", \"\") == \"staging\"]", jsonList, yamlList)))
	if diags != "" {
		t.Fatal(diags)
	}
	if diff := cmp.Diff([]string{"sd[db.example.com:5432] db.example.com:5432"}, got); diff != "" {
		t.Errorf("targets by label (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, data, want string }{
		{"bad.json", `{"targets": []}`, "not a list of target groups"},
		{"unknown.json", `[{"targets": ["a:1"], "lables": {}}]`, `unknown field "lables"`},
		{"noport.json", `[{"targets": ["api.example.com"]}]`, `"api.example.com" is not host:port`},
		{"port0.yaml", "- targets: ['a:0']\n", `"a:0" has no valid port`},
		{"list.txt", "a:1\n", "must end in .json, .yml or .yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, diags := loadDiscovery(t, discoveryFile(fmt.Sprintf("file_sd(%q)", write(tt.name, tt.data))))
			if !strings.Contains(diags, "Error in function call") || !strings.Contains(diags, tt.want) {
				t.Errorf("diagnostics:\n%s\nwant an error in the call saying %q", diags, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, _, diags := loadDiscovery(t, discoveryFile(fmt.Sprintf("file_sd(%q)", filepath.Join(dir, "nope.json"))))
		if !strings.Contains(diags, "no such file or directory") {
			t.Errorf("diagnostics:\n%s", diags)
		}
	})
}

// TestDNSSRV looks SRV records up from unbound, in priority and weight
// order.
func TestDNSSRV(t *testing.T) {
	unbound, err := daemon.StartUnbound(daemon.UnboundConfig{Zone: `	local-zone: "example.test." static
	local-data: "_https._tcp.example.test. 60 IN SRV 20 0 8443 backup.example.test."
	local-data: "_https._tcp.example.test. 60 IN SRV 10 5 443 web2.example.test."
	local-data: "_https._tcp.example.test. 60 IN SRV 10 50 443 web1.example.test."
	local-data: "_none._tcp.example.test. 60 IN SRV 0 0 0 ."`})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unbound.Close() })
	server := unbound.Addr.String()
	got, disc, diags := loadDiscovery(t, discoveryFile(fmt.Sprintf("dns_srv(%q, %q)", "_https._tcp.example.test", server)))
	if diags != "" {
		t.Fatal(diags)
	}
	want := []string{"sd[backup.example.test:8443] backup.example.test:8443", "sd[web1.example.test:443] web1.example.test:443", "sd[web2.example.test:443] web2.example.test:443"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if !disc.DNS {
		t.Error("Discovery.DNS is false after dns_srv")
	}
	// The order and labels, through a list target's index.
	got, _, diags = loadDiscovery(t, forEachHeader+`
pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}
target "first" {
  host     = dns_srv("_https._tcp.example.test", "`+server+`")[0].host
  port     = dns_srv("_https._tcp.example.test", "`+server+`")[0].labels["priority"] == "10" ? 1 : 2
  pipeline = pipeline.tcp
}`)
	if diags != "" || len(got) != 1 || got[0] != "first web1.example.test:1" {
		t.Errorf("targets %v, diagnostics %s; want web1 first, priority 10", got, diags)
	}
	for _, tt := range []struct{ name, want string }{
		{"_none._tcp.example.test", "no SRV records"},
		{"_nope._tcp.example.test", "NXDOMAIN"},
		{"_https._tcp.example.org", "REFUSED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, diags := loadDiscovery(t, discoveryFile(fmt.Sprintf("dns_srv(%q, %q)", tt.name, server)))
			if !strings.Contains(diags, tt.want) {
				t.Errorf("diagnostics:\n%s\nwant %q", diags, tt.want)
			}
		})
	}
}

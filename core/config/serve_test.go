package config

import (
	"testing"
)

func TestAdhocAllows(t *testing.T) {
	src := `
serve {
  adhoc {
    allow = ["10.0.0.0/8", "*.internal:443", "127.0.0.1:*", "[::1]:9090", "192.168.1.7", "[fd00::/8]:53"]
  }
}
`
	f, diags := NewLoader(Options{Plugins: testPlugins()}).LoadSource("serve.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := &f.Serve.Adhoc
	for _, tt := range []struct {
		host string
		port uint16
		want bool
	}{
		{"10.1.2.3", 22, true},
		{"11.1.2.3", 22, false},
		{"::ffff:10.0.0.1", 80, true}, // an IPv4-mapped address is its IPv4 one
		{"api.internal", 443, true},
		{"API.Internal.", 443, true},
		{"api.internal", 80, false},
		{"internal", 443, false},
		{"127.0.0.1", 1, true},
		{"127.0.0.2", 1, false},
		{"localhost", 1, false}, // a name is not resolved to be checked
		{"::1", 9090, true},
		{"::1", 9091, false},
		{"192.168.1.7", 65535, true},
		{"fd00::53", 53, true},
		{"fe80::1", 53, false},
		{"10.1.2.3.internal", 443, true},
	} {
		if got := a.Allows(tt.host, tt.port); got != tt.want {
			t.Errorf("Allows(%q, %d) = %v, want %v", tt.host, tt.port, got, tt.want)
		}
	}

	f, diags = NewLoader(Options{Plugins: testPlugins()}).LoadSource("none.hcl", []byte(``))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if f.Serve.Adhoc.Allows("127.0.0.1", 1) {
		t.Error("a file without a serve block allows an ad-hoc target")
	}
}

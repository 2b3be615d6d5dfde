package builtins_test

import (
	"testing"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// required are values for the built-ins' required attributes, by plugin,
// kind and name.
var required = map[string]map[sdk.Kind]map[string]cty.Value{
	"dns-miekg": {
		sdk.KindResolver: {"servers": cty.ListVal([]cty.Value{cty.StringVal("127.0.0.1")})},
		sdk.KindDialer:   {"query_name": cty.StringVal("probe.test")},
	},
	"dial-socks5":       {sdk.KindDialer: {"proxy": cty.StringVal("127.0.0.1:1080")}},
	"dial-http-connect": {sdk.KindDialer: {"proxy": cty.StringVal("http://127.0.0.1:3128")}},
	"udp-payload":       {sdk.KindHandshake: {"payload": cty.StringVal("status")}},
	"starttls":          {sdk.KindHandshake: {"protocol": cty.StringVal("smtp")}},
}

// TestBuiltins checks the list: every built-in is listed under its own
// name, serves what its schemas describe, and each of its components
// constructs from its schema's defaults (and the required attributes
// above). A constructor that reads an attribute its schema does not have,
// or reads one as another type, panics (sdk.String and the other getters)
// and fails here; each plugin's own tests read the rest of its attributes.
func TestBuiltins(t *testing.T) {
	plugins := builtins.Plugins()
	if len(plugins) != 15 {
		t.Errorf("%d built-ins, want 15: dns-system, dns-miekg, dial-tcp, dial-socks5, dial-http-connect, dial-udp, tls, http, icmp, grpc-health, quic, http3, ssh, udp-payload, starttls", len(plugins))
	}
	for name, p := range plugins {
		if p.Info.Name != name || p.Info.Version == "" || p.Info.Description == "" {
			t.Errorf("%s: info %+v, want its name, a version and a description", name, p.Info)
		}
		if len(p.Kinds()) == 0 {
			t.Errorf("%s serves nothing", name)
		}
		for _, k := range p.Kinds() {
			t.Run(name+"/"+string(k), func(t *testing.T) {
				cfg, err := p.Schema(k).Config(required[name][k])
				if err != nil {
					t.Fatalf("configure from the defaults: %v", err)
				}
				c, err := p.New(k, cfg)
				if err != nil {
					t.Fatalf("construct from the defaults: %v", err)
				}
				if closer, ok := c.(sdk.Closer); ok {
					if err := closer.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				}
			})
		}
	}
}

package tailscale

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

func TestConfig(t *testing.T) {
	tsnet := func(more map[string]cty.Value) map[string]cty.Value {
		v := map[string]cty.Value{"backend": cty.StringVal(backendTSNet)}
		for k, x := range more {
			v[k] = x
		}
		return v
	}
	str := cty.StringVal
	tests := []struct {
		name     string
		values   map[string]cty.Value
		wantAttr string // "" for a valid configuration
	}{
		{"local by default", nil, ""},
		{"local with a socket", map[string]cty.Value{"socket": str("/nonexistent/tailscaled.sock")}, ""},
		{"tsnet with defaults", tsnet(nil), ""},
		{"tsnet in full", tsnet(map[string]cty.Value{"control_url": str("https://headscale.example.com"),
			"auth_key_env": str("HEADSCALE_KEY"), "state_dir": str("/nonexistent/state"), "hostname": str("probe-1"),
			"ephemeral": cty.True}), ""},
		{"unknown backend", map[string]cty.Value{"backend": str("tun")}, "backend"},
		{"socket with tsnet", tsnet(map[string]cty.Value{"socket": str("/run/tailscale.sock")}), "socket"},
		{"control_url with local", map[string]cty.Value{"control_url": str("https://hs.example.com")}, "control_url"},
		{"auth_key_env with local", map[string]cty.Value{"auth_key_env": str("KEY")}, "auth_key_env"},
		{"state_dir with local", map[string]cty.Value{"state_dir": str("/tmp")}, "state_dir"},
		{"hostname with local", map[string]cty.Value{"hostname": str("probe")}, "hostname"},
		{"ephemeral with local", map[string]cty.Value{"ephemeral": cty.True}, "ephemeral"},
		{"control_url without scheme", tsnet(map[string]cty.Value{"control_url": str("headscale.example.com")}), "control_url"},
		{"control_url of another scheme", tsnet(map[string]cty.Value{"control_url": str("ftp://headscale.example.com")}), "control_url"},
		{"auth_key_env not a name", tsnet(map[string]cty.Value{"auth_key_env": str("tskey-auth-abc=")}), "auth_key_env"},
		{"hostname with a dot", tsnet(map[string]cty.Value{"hostname": str("probe.example")}), "hostname"},
		{"hostname with a trailing hyphen", tsnet(map[string]cty.Value{"hostname": str("probe-")}), "hostname"},
	}
	p := Plugin()
	for _, k := range []sdk.Kind{sdk.KindResolver, sdk.KindDialer} {
		for _, tc := range tests {
			t.Run(string(k)+"/"+tc.name, func(t *testing.T) {
				cfg, err := p.Schema(k).Config(tc.values)
				if err != nil {
					t.Fatalf("Config: %v", err)
				}
				// The constructors touch no network: none of these
				// sockets, directories or servers exists.
				c, err := p.New(k, cfg)
				if tc.wantAttr == "" {
					if err != nil {
						t.Fatalf("New = %v, want no error", err)
					}
					if err := c.(sdk.Closer).Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
					return
				}
				if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tc.wantAttr {
					t.Errorf("New = %v, want an *sdk.AttrError for %s", err, tc.wantAttr)
				}
			})
		}
	}
}

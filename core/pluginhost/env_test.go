package pluginhost_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/pluginhost"
)

// goPluginEnv are the variables go-plugin and the host set for a plugin
// process themselves.
var goPluginEnv = []string{"PROBE_PLUGIN_MAGIC_COOKIE", "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT",
	"PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_UNIX_SOCKET_DIR"}

// TestPluginEnvironment checks that a plugin process sees only the
// variables of pluginhost.BaseEnv, those its binary's Env names, and
// go-plugin's own: no other variable of probe's environment, secrets
// included.
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "UTC")
	t.Setenv("TS_AUTHKEY", "tskey-auth-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-for-plugins")
	t.Setenv("PROBE_VAR_token", "not-for-plugins-either")
	base := map[string]string{}
	for _, name := range pluginhost.BaseEnv {
		if v, ok := os.LookupEnv(name); ok {
			base[name] = v
		}
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		env  []string
		want map[string]string
	}{
		{"base only", nil, with(nil)},
		{"listed", []string{"TS_AUTHKEY", "PATH", "UNSET_VARIABLE"}, with(map[string]string{"TS_AUTHKEY": "tskey-auth-test"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			p := handshakePipeline(t, h, pluginhost.Binary{Name: "env", Path: envBin, Env: tt.env})
			a := probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 5*time.Second)
			if !a.OK {
				t.Fatalf("attempt failed: %+v", a.Failure)
			}
			environ, ok := a.Phases[2].Attrs["environ"].([]string)
			if !ok {
				t.Fatalf("environ = %#v, want a []string", a.Phases[2].Attrs["environ"])
			}
			got := map[string]string{}
			for _, kv := range environ {
				k, v, _ := strings.Cut(kv, "=")
				got[k] = v
			}
			for _, k := range goPluginEnv {
				if _, ok := got[k]; !ok {
					t.Errorf("the plugin lacks %s: %v", k, environ)
				}
				delete(got, k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plugin environment (-want +got):\n%s", diff)
			}
		})
	}
}

package exporter

import (
	"strings"
	"testing"
	"time"
)

// TestVantage checks that the file's vantage labels every series of
// /metrics (probe's own and the scheduled targets') and of /probe, that
// without one no series has the label, and that a reload may not change it.
func TestVantage(t *testing.T) {
	for _, vantage := range []string{"eu-west", ""} {
		attr := ""
		if vantage != "" {
			attr = `vantage = "` + vantage + `"` + "\n"
		}
		f := start(t, attr+`schedule { every = "50ms" }`+targets)
		want, api := "", `{target="api"}`
		if vantage != "" {
			want = `vantage="` + vantage + `"`
			api = `{target="api",` + want + `}`
		}
		deadline := time.Now().Add(5 * time.Second)
		for f.metrics(t, "/metrics", nil)["probe_scheduled_success"][api] != 1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, path := range []string{"/metrics", "/probe?target=api"} {
			got := f.metrics(t, path, nil)
			if len(got) < 3 {
				t.Errorf("vantage %q: %s has %d metrics", vantage, path, len(got))
			}
			for name, series := range got {
				for labels := range series {
					if has := strings.Contains(labels, "vantage="); has != (vantage != "") || !strings.Contains(labels, want) {
						t.Errorf("vantage %q: %s: %s%s", vantage, path, name, labels)
					}
				}
			}
		}
		if got := f.metrics(t, "/metrics", nil)["probe_scheduled_success"][api]; got != 1 {
			t.Errorf("vantage %q: probe_scheduled_success%s = %v, want 1", vantage, api, got)
		}
		f.set(`vantage = "elsewhere"` + "\n" + targets)
		if err := f.exp.Reload(); err == nil || !strings.Contains(err.Error(), "restart") {
			t.Errorf("vantage %q: a reload to another vantage: %v, want an error saying to restart", vantage, err)
		}
		if got := f.metrics(t, "/probe?target=api", nil)["probe_success"]["{"+want+"}"]; got != 1 {
			t.Errorf("vantage %q: after the refused reload, probe_success{%s} = %v, want 1", vantage, want, got)
		}
	}
}

package pluginhost_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// TestLiarPlugin: what an external plugin reports that no measurement can
// crosses the plugin protocol as it was sent, and the engine holds it to
// its rules: NaN and ±Inf attributes become strings (JSON can carry the
// attempt), a negative duration fails the attempt as plugin.error, and two
// phases of one name become liar and liar#2.
func TestLiarPlugin(t *testing.T) {
	p := misbehaving(t, newHost(t), liarBin, "liar")
	port := testLab.TCP.Addr.Port()
	names := func(a engine.Attempt) []string {
		var out []string
		for _, ph := range a.Phases {
			out = append(out, ph.Name)
		}
		return out
	}

	a := probeOnce(t, p, "nan.test", port, 2*time.Second)
	checkAttempt(t, a)
	want := map[string]any{"nan": "NaN", "inf": "+Inf", "list": []any{"-Inf", 1.5}}
	if diff := cmp.Diff(want, a.Phases[2].Attrs); !a.OK || diff != "" {
		t.Errorf("nan.test: ok %v, attrs (-want +got):\n%s", a.OK, diff)
	}
	if _, err := json.Marshal(a.Phases[2].Attrs); err != nil {
		t.Errorf("nan.test: %v", err)
	}

	a = probeOnce(t, p, "negative.test", port, 2*time.Second)
	checkAttempt(t, a)
	if f := a.Failure; f == nil || f.Class != sdk.ClassPluginError || f.Phase != "liar" || !strings.Contains(f.Message, "negative start or duration") {
		t.Errorf("negative.test: failure %+v, want plugin.error in liar for a negative duration", a.Failure)
	}

	a = probeOnce(t, p, "twice.test", port, 2*time.Second)
	checkAttempt(t, a)
	if got := names(a); !a.OK || !slices.Equal(got, []string{"resolve", "connect", "liar", "liar#2"}) {
		t.Errorf("twice.test: ok %v, phases %v, want liar and liar#2", a.OK, got)
	}
}

package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
)

// addressResult is a run of one target under address_policy "all": two
// rounds over two addresses, the second address refused, and a round whose
// resolution failed.
func addressResult() *engine.Result {
	v4, v6 := netip.MustParseAddrPort("127.0.0.1:443"), netip.MustParseAddrPort("[::1]:443")
	ok := map[string]stats.Summary{"resolve": {Count: 2, OK: 2, P50: us(200)}, "connect": {Count: 2, OK: 2, P50: us(80)},
		"total": {Count: 2, OK: 2, P50: us(300)}}
	bad := map[string]stats.Summary{"resolve": {Count: 2, OK: 2, P50: us(200)}, "connect": {Count: 2, Failed: 2},
		"total": {Count: 2, Failed: 2}}
	unresolved := map[string]stats.Summary{"resolve": {Count: 1, Failed: 1}, "total": {Count: 1, Failed: 1}}
	refused := map[sdk.Class]int{sdk.ClassTCPRefused: 2}
	tr := &engine.TargetResult{
		Target: &engine.Target{Name: "web", Host: "web.probe.test", Port: 443, Pipeline: &engine.Pipeline{Name: "tcp", AddressPolicy: engine.AddressAll}},
		Phases: []string{"resolve", "connect", "total"},
		Stats: map[string]stats.Summary{"resolve": {Count: 5, OK: 4, P50: us(200)}, "connect": {Count: 4, OK: 2, Failed: 2, P50: us(80)},
			"total": {Count: 5, OK: 2, Failed: 3}},
		FailuresByClass: map[sdk.Class]int{sdk.ClassTCPRefused: 2, sdk.ClassDNSTimeout: 1},
		ByAddress: []engine.AddressResult{
			{Address: v4, OK: true, Phases: []string{"resolve", "connect", "total"}, Stats: ok},
			{Address: v6, Phases: []string{"resolve", "connect", "total"}, Stats: bad, FailuresByClass: refused},
			{Phases: []string{"resolve", "total"}, Stats: unresolved, FailuresByClass: map[sdk.Class]int{sdk.ClassDNSTimeout: 1}},
		},
	}
	return &engine.Result{Targets: []*engine.TargetResult{tr}, Phases: tr.Phases, Stats: tr.Stats,
		Summary: engine.Summary{Targets: 1, Failed: 1, FailuresByClass: tr.FailuresByClass}}
}

func TestByAddress(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, "f.hcl", addressResult()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Targets []struct {
			ByAddress []struct {
				Address         *string                   `json:"address"`
				OK              bool                      `json:"ok"`
				Stats           map[string]map[string]any `json:"stats"`
				FailuresByClass map[string]int            `json:"failures_by_class"`
			} `json:"by_address"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Address  string
		OK       bool
		Count    float64
		Failures map[string]int
	}
	var got []entry
	for _, e := range doc.Targets[0].ByAddress {
		addr := "null"
		if e.Address != nil {
			addr = *e.Address
		}
		got = append(got, entry{addr, e.OK, e.Stats["total"]["count"].(float64), e.FailuresByClass})
	}
	want := []entry{
		{"127.0.0.1:443", true, 2, map[string]int{}},
		{"[::1]:443", false, 2, map[string]int{"tcp.refused": 2}},
		{"null", false, 1, map[string]int{"dns.timeout": 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("by_address (-want +got):\n%s", diff)
	}

	buf.Reset()
	if err := JSON(&buf, "f.hcl", result()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "by_address") {
		t.Error("by_address appears for targets under another policy")
	}
}

func TestTableByAddress(t *testing.T) {
	var buf bytes.Buffer
	if err := Table(&buf, addressResult()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	var rows [][]string
	for _, l := range lines[1:4] {
		rows = append(rows, strings.Fields(l))
	}
	want := [][]string{
		{"web", "127.0.0.1:443", "2/2", "0.20ms", "0.08ms", "0.30ms"},
		{"web", "[::1]:443", "0/2", "0.20ms", "-", "-", "tcp.refused×2"},
		{"web", "-", "0/1", "-", "-", "dns.timeout×1"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s\n%s", diff, buf.String())
	}
}

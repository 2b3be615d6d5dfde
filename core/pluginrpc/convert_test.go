package pluginrpc

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// TestConvertRoundTrip checks that each pair of the converter is the
// inverse of the other: what a plugin encodes, probe decodes as it was.
func TestConvertRoundTrip(t *testing.T) {
	schema := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "servers", Type: cty.List(cty.String), Required: true, Description: "Servers."},
		{Name: "timeout", Type: cty.String, Default: cty.StringVal("2s")},
		{Name: "retries", Type: cty.Number},
		{Name: "headers", Type: cty.Map(cty.String), Default: cty.MapValEmpty(cty.String)},
	}}
	ps, err := schemaToProto(&schema)
	if err != nil {
		t.Fatal(err)
	}
	back, err := schemaFromProto(ps)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(schema, back, cmp.Comparer(func(a, b cty.Type) bool { return a.Equals(b) }),
		cmp.Comparer(func(a, b cty.Value) bool { return a.RawEquals(b) })); diff != "" {
		t.Errorf("schema (-sent +received):\n%s", diff)
	}

	cfg, err := schema.Config(map[string]cty.Value{"servers": cty.TupleVal([]cty.Value{cty.StringVal("127.0.0.1")}), "retries": cty.NumberIntVal(3)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := configToProto(&schema, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := configFromProto(&back, raw); err != nil || !got.RawEquals(cfg) {
		t.Errorf("configuration %#v, %v; want %#v", got, err, cfg)
	}

	phases := []sdk.Phase{
		{Name: "resolve", Start: 3 * time.Microsecond, Duration: 2 * time.Millisecond, OK: true,
			Attrs: map[string]any{"server": "127.0.0.1:53", "rcode": "NOERROR", "tries": []any{map[string]any{"n": 1}}, "ttl": int64(300)}},
		{Name: "connect", Duration: time.Second, Attrs: map[string]any{}},
	}
	pp, err := phasesToProto(phases)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := phasesFromProto(pp); err != nil || !cmp.Equal(got, phases) {
		t.Errorf("phases: %v, diff (-sent +received):\n%s", err, cmp.Diff(phases, got))
	}

	f := &sdk.Failure{Phase: "connect", Class: sdk.ClassTCPRefused, Message: "connection refused"}
	if got := failureFromProto(failureToProto(f)); !cmp.Equal(got, f) {
		t.Errorf("failure %+v, want %+v", got, f)
	}
	if failureFromProto(failureToProto(nil)) != nil {
		t.Error("no failure came back as one")
	}
	ae := &sdk.AttrError{Attr: "servers", Summary: "Invalid server", Detail: "not an address"}
	if got := attrErrorFromProto(attrErrorToProto(ae)); *got != *ae {
		t.Errorf("attribute error %+v, want %+v", got, ae)
	}

	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if got, err := addressesFromProto(addressesToProto(addrs)); err != nil || !cmp.Equal(got, addrs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Errorf("addresses %v, %v; want %v", got, err, addrs)
	}
	if _, err := addressesFromProto([]string{"127.0.0.1", "nowhere"}); err == nil || err.Error() != `a bad address "nowhere": ParseAddr("nowhere"): unable to parse IP` {
		t.Errorf("a bad address: %v", err)
	}

	deadline := time.Now().Add(time.Second)
	if got, ok := deadlineFromProto(deadlineToProto(deadline, true)); !ok || !got.Equal(deadline.Round(0)) {
		t.Errorf("deadline %v, %v; want %v", got, ok, deadline)
	}
	if _, ok := deadlineFromProto(deadlineToProto(time.Time{}, false)); ok {
		t.Error("no deadline came back as one")
	}
}

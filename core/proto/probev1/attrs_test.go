package probev1

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// sample holds every kind of value, and strings long enough that their
// messages' lengths take two and three bytes.
func sample() map[string]any {
	return map[string]any{
		"string":  "NOERROR",
		"empty":   "",
		"bool":    true,
		"false":   false,
		"int":     -3,
		"int64":   int64(math.MaxInt64),
		"float64": 1.569494,
		"strings": []string{"api.probe.test", "", "127.0.0.1"},
		"nostr":   []string{},
		"map":     map[string]any{"rtt_ms": 0.004, "nested": map[string]any{"deep": []string{"x"}}},
		"list":    []any{"a", 1, false, []any{2.5}},
		"maps": []map[string]any{
			{"outcome": "NOERROR", "size": 73, "type": "A"},
			{"outcome": "NXDOMAIN", "size": 123, "type": "AAAA"},
		},
		"long":     strings.Repeat("x", 300),
		"longer":   strings.Repeat("y", 20000),
		"longmap":  map[string]any{"s": strings.Repeat("z", 200)},
		"duration": 1500 * time.Millisecond, // JSON: comes back as float64
	}
}

// decoded is what probe gets back for sample(): the same, but for the value
// that travelled as JSON.
func decoded() map[string]any {
	m := sample()
	m["duration"] = float64(1500 * time.Millisecond)
	return m
}

func TestAttrsRoundTrip(t *testing.T) {
	b, err := AppendAttrs(nil, sample())
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAttrs(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := decoded(); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
	}
	// Appending keeps what b held.
	b2, err := AppendAttrs([]byte("prefix"), map[string]any{"k": "v"})
	if err != nil || !strings.HasPrefix(string(b2), "prefix") {
		t.Fatalf("AppendAttrs onto a prefix: %q, %v", b2, err)
	}
	if m, err := DecodeAttrs(b2[len("prefix"):]); err != nil || m["k"] != "v" {
		t.Errorf("after a prefix: %v, %v", m, err)
	}
	if m, err := DecodeAttrs(nil); err != nil || m == nil || len(m) != 0 {
		t.Errorf("DecodeAttrs(nil) = %#v, %v; want an empty map", m, err)
	}
}

// TestAttrsAreProtobuf checks the hand-written codec against the generated
// one in both directions: what a plugin in another language builds with
// generated code is what probe decodes, and the other way round.
func TestAttrsAreProtobuf(t *testing.T) {
	b, err := AppendAttrs(nil, sample())
	if err != nil {
		t.Fatal(err)
	}
	var msg Attrs
	if err := proto.Unmarshal(b, &msg); err != nil {
		t.Fatalf("the generated code does not read AppendAttrs's bytes: %v", err)
	}
	if got, want := fromMessage(t, &msg), decoded(); !reflect.DeepEqual(got, want) {
		t.Errorf("generated code read:\n got %#v\nwant %#v", got, want)
	}

	// A message built with the generated types, as another language would.
	strs := func(s ...string) *Value { return &Value{Kind: &Value_Strings{Strings: &StringList{Values: s}}} }
	str := func(s string) *Value { return &Value{Kind: &Value_String_{String_: s}} }
	built := &Attrs{Attrs: []*Attr{
		{Key: "rcode", Value: str("NOERROR")},
		{Key: "ad", Value: &Value{Kind: &Value_Bool{Bool: false}}},
		{Key: "size", Value: &Value{Kind: &Value_Int{Int: 73}}},
		{Key: "ttl", Value: &Value{Kind: &Value_Int64{Int64: -60}}},
		{Key: "rtt_ms", Value: &Value{Kind: &Value_Float64{Float64: 1.25}}},
		{Key: "sans", Value: strs("a", "b")},
		{Key: "map", Value: &Value{Kind: &Value_Map{Map: &Map{Values: []*Attr{{Key: "x", Value: str("y")}}}}}},
		{Key: "list", Value: &Value{Kind: &Value_List{List: &List{Values: []*Value{str("a"), strs()}}}}},
		{Key: "maps", Value: &Value{Kind: &Value_Maps{Maps: &MapList{Values: []*Map{{Values: []*Attr{{Key: "n", Value: str("1")}}}}}}}},
		{Key: "json", Value: &Value{Kind: &Value_Json{Json: []byte(`{"a":[1,"b"]}`)}}},
	}}
	raw, err := proto.Marshal(built)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAttrs(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"rcode": "NOERROR", "ad": false, "size": 73, "ttl": int64(-60), "rtt_ms": 1.25,
		"sans": []string{"a", "b"}, "map": map[string]any{"x": "y"},
		"list": []any{"a", []string{}}, "maps": []map[string]any{{"n": "1"}},
		"json": map[string]any{"a": []any{float64(1), "b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded the generated code's bytes:\n got %#v\nwant %#v", got, want)
	}
}

// fromMessage turns generated messages back into Go values, the slow way.
func fromMessage(t testing.TB, m *Attrs) map[string]any {
	t.Helper()
	var val func(v *Value) any
	attrs := func(list []*Attr) map[string]any {
		out := map[string]any{}
		for _, a := range list {
			out[a.Key] = val(a.Value)
		}
		return out
	}
	val = func(v *Value) any {
		switch k := v.GetKind().(type) {
		case *Value_String_:
			return k.String_
		case *Value_Bool:
			return k.Bool
		case *Value_Int:
			return int(k.Int)
		case *Value_Int64:
			return k.Int64
		case *Value_Float64:
			return k.Float64
		case *Value_Strings:
			return append([]string{}, k.Strings.GetValues()...)
		case *Value_Map:
			return attrs(k.Map.GetValues())
		case *Value_List:
			out := []any{}
			for _, e := range k.List.GetValues() {
				out = append(out, val(e))
			}
			return out
		case *Value_Maps:
			out := []map[string]any{}
			for _, e := range k.Maps.GetValues() {
				out = append(out, attrs(e.GetValues()))
			}
			return out
		case *Value_Json:
			var f float64
			if _, err := fmt.Sscan(string(k.Json), &f); err != nil {
				t.Fatalf("JSON value %s: %v", k.Json, err)
			}
			return f
		}
		t.Fatalf("value of kind %T", v.GetKind())
		return nil
	}
	return attrs(m.Attrs)
}

func TestAttrsErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := AppendAttrs(nil, cyclic); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("a cyclic map: %v, want an error about nesting", err)
	}
	if _, err := AppendAttrs(nil, map[string]any{"ch": make(chan int)}); err == nil || !strings.HasPrefix(err.Error(), "ch: ") {
		t.Errorf("a value JSON cannot encode: %v, want an error naming the attribute", err)
	}

	// A value nested deeper than maxDepth.
	deep := map[string]any{"leaf": "x"}
	for range maxDepth + 1 {
		deep = map[string]any{"m": deep}
	}
	b := must(AppendAttrs(nil, map[string]any{"ok": map[string]any{"m": "x"}}))
	if _, err := DecodeAttrs(b); err != nil {
		t.Fatal(err)
	}
	gen, err := proto.Marshal(toMessage(deep))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeAttrs(gen); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("attributes nested %d deep: %v, want an error about nesting", maxDepth+2, err)
	}

	attr := func(key string, value []byte) []byte {
		var a []byte
		a = protowire.AppendTag(a, fieldAttrKey, protowire.BytesType)
		a = protowire.AppendString(a, key)
		if value != nil {
			a = protowire.AppendTag(a, fieldAttrValue, protowire.BytesType)
			a = protowire.AppendBytes(a, value)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldAttrs, protowire.BytesType), a)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", must(AppendAttrs(nil, map[string]any{"k": "value"}))[:6], "unexpected EOF"},
		{"no value", attr("k", nil), "k: attribute without a value"},
		{"empty value", attr("k", []byte{}), "k: value of no kind"},
		{"unknown kind", attr("k", protowire.AppendVarint(protowire.AppendTag(nil, 11, protowire.VarintType), 1)), "k: value of an unknown kind (field 11)"},
		{"wrong wire type", attr("k", protowire.AppendVarint(protowire.AppendTag(nil, kindString, protowire.VarintType), 1)), "k: value kind 1: wire type 0"},
		{"bad JSON", attr("k", protowire.AppendBytes(protowire.AppendTag(nil, kindJSON, protowire.BytesType), []byte("{"))), "k: decode JSON value"},
	} {
		if _, err := DecodeAttrs(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}

	// Fields a later revision may add to Attrs, Attr or a list are skipped.
	later := protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 7)
	b = append(append([]byte{}, later...), attr("k", protowire.AppendString(protowire.AppendTag(nil, kindString, protowire.BytesType), "v"))...)
	if m, err := DecodeAttrs(b); err != nil || m["k"] != "v" {
		t.Errorf("with a later field: %v, %v", m, err)
	}
}

// toMessage builds m with the generated types, as the SDK did before
// attrs.go.
func toMessage(m map[string]any) *Attrs {
	var val func(v any) *Value
	list := func(m map[string]any) []*Attr {
		out := make([]*Attr, 0, len(m))
		for k, v := range m {
			out = append(out, &Attr{Key: k, Value: val(v)})
		}
		return out
	}
	val = func(v any) *Value {
		switch v := v.(type) {
		case string:
			return &Value{Kind: &Value_String_{String_: v}}
		case bool:
			return &Value{Kind: &Value_Bool{Bool: v}}
		case int:
			return &Value{Kind: &Value_Int{Int: int64(v)}}
		case int64:
			return &Value{Kind: &Value_Int64{Int64: v}}
		case float64:
			return &Value{Kind: &Value_Float64{Float64: v}}
		case []string:
			return &Value{Kind: &Value_Strings{Strings: &StringList{Values: v}}}
		case map[string]any:
			return &Value{Kind: &Value_Map{Map: &Map{Values: list(v)}}}
		case []any:
			l := make([]*Value, len(v))
			for i, e := range v {
				l[i] = val(e)
			}
			return &Value{Kind: &Value_List{List: &List{Values: l}}}
		case []map[string]any:
			l := make([]*Map, len(v))
			for i, e := range v {
				l[i] = &Map{Values: list(e)}
			}
			return &Value{Kind: &Value_Maps{Maps: &MapList{Values: l}}}
		}
		panic(fmt.Sprintf("toMessage: a %T", v))
	}
	return &Attrs{Attrs: list(m)}
}

// attempt is the attributes of one attempt's phases (resolve, connect, tls)
// as dns-miekg, dial-tcp and tls report them.
func attempt() []map[string]any {
	return []map[string]any{
		{
			"ad": false, "addresses": []string{"127.0.0.1"}, "rcode": "NOERROR", "rtt_ms": 1.569494,
			"server": "127.0.0.1:42566", "size": 73, "tcp_fallback": false, "transport": "udp", "ttl": 60,
			"tries": []map[string]any{{"outcome": "NOERROR", "rtt_ms": 1.569494, "server": "127.0.0.1:42566",
				"size": 73, "start_ms": 0.002004, "transport": "udp", "type": "A"}},
		},
		{"kernel_rtt_ms": 0.004, "kernel_rttvar_ms": 0.002, "local": "127.0.0.1:58152", "remote": "127.0.0.1:46189"},
		{
			"alpn": "h2", "cert_days_left": 0, "cert_issuer": "CN=probe lab CA,O=probe lab",
			"cert_not_after": "2026-11-24T00:11:58Z", "cert_not_before": "2026-11-22T23:11:58Z",
			"cert_sans": []string{"api.probe.test", "*.probe.test", "127.0.0.1"}, "cert_subject": "CN=api.probe.test",
			"cipher": "TLS_AES_128_GCM_SHA256", "version": "TLS 1.3", "resumed": false, "server_name": "api.probe.test",
			"chain_len": 2, "ocsp_stapled": false, "curve": "X25519MLKEM768",
		},
	}
}

// BenchmarkAttrs encodes and decodes one attempt's attributes with
// attrs.go (codec) and, side by side, by building and reading the
// generated messages (generated).
func BenchmarkAttrs(b *testing.B) {
	phases := attempt()
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, m := range phases {
				enc, err := AppendAttrs(nil, m)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := DecodeAttrs(enc); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, m := range phases {
				enc, err := proto.Marshal(toMessage(m))
				if err != nil {
					b.Fatal(err)
				}
				var msg Attrs
				if err := proto.Unmarshal(enc, &msg); err != nil {
					b.Fatal(err)
				}
				fromMessage(b, &msg)
			}
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzAttrs decodes arbitrary bytes: no panic, and what decodes encodes and
// decodes again to the same values.
func FuzzAttrs(f *testing.F) {
	f.Add(must(AppendAttrs(nil, sample())))
	f.Add(must(AppendAttrs(nil, map[string]any{"k": []any{map[string]any{"x": 1}}})))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeAttrs(b)
		if err != nil {
			return
		}
		again, err := AppendAttrs(nil, m)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", m, err)
		}
		m2, err := DecodeAttrs(again)
		if err != nil {
			t.Fatalf("cannot decode what was encoded from %#v: %v", m, err)
		}
		// %#v prints maps sorted, and NaN equal to itself.
		if a, b := fmt.Sprintf("%#v", m), fmt.Sprintf("%#v", m2); a != b {
			t.Fatalf("round trip changed the values:\n%s\n%s", a, b)
		}
	})
}

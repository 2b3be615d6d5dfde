package sdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

var schema = sdk.Schema{Attributes: []sdk.Attribute{
	{Name: "servers", Type: cty.List(cty.String), Required: true},
	{Name: "timeout", Type: cty.String, Default: cty.StringVal("2s")},
	{Name: "retries", Type: cty.Number},
	{Name: "tcp", Type: cty.Bool},
}}

func TestSchemaConfig(t *testing.T) {
	tests := []struct {
		name     string
		values   map[string]cty.Value
		wantAttr string // the AttrError's attribute, "" for success
		check    func(t *testing.T, cfg cty.Value)
	}{
		{
			name:   "defaults and nulls",
			values: map[string]cty.Value{"servers": cty.TupleVal([]cty.Value{cty.StringVal("127.0.0.1")})},
			check: func(t *testing.T, cfg cty.Value) {
				if got := sdk.Strings(cfg, "servers"); !cmp.Equal(got, []string{"127.0.0.1"}) {
					t.Errorf("servers = %v", got)
				}
				if d, err := sdk.Duration(cfg, "timeout"); err != nil || d != 2*time.Second {
					t.Errorf("timeout = %v, %v", d, err)
				}
				if n, err := sdk.Int(cfg, "retries"); err != nil || n != 0 {
					t.Errorf("retries = %v, %v", n, err)
				}
				if sdk.Bool(cfg, "tcp") {
					t.Error("null attributes must read as zero values")
				}
			},
		},
		{
			name: "values converted",
			values: map[string]cty.Value{
				"servers": cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
				"retries": cty.StringVal("3"), "tcp": cty.True, "timeout": cty.StringVal("150ms"),
			},
			check: func(t *testing.T, cfg cty.Value) {
				if n, err := sdk.Int(cfg, "retries"); err != nil || n != 3 {
					t.Errorf("retries = %v, %v", n, err)
				}
				if d, _ := sdk.Duration(cfg, "timeout"); d != 150*time.Millisecond || !sdk.Bool(cfg, "tcp") {
					t.Errorf("timeout = %v, tcp = %v", d, sdk.Bool(cfg, "tcp"))
				}
			},
		},
		{name: "missing required", values: nil, wantAttr: "servers"},
		{name: "unknown attribute", values: map[string]cty.Value{"servr": cty.StringVal("x")}, wantAttr: "servr"},
		{name: "wrong type", values: map[string]cty.Value{"servers": cty.True}, wantAttr: "servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := schema.Config(tt.values)
			if tt.wantAttr != "" {
				ae, ok := sdk.AsAttrError(err)
				if !ok || ae.Attr != tt.wantAttr {
					t.Fatalf("err = %v, want an AttrError for %q", err, tt.wantAttr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestValueErrors(t *testing.T) {
	cfg, err := schema.Config(map[string]cty.Value{
		"servers": cty.ListValEmpty(cty.String), "retries": cty.NumberFloatVal(1.5), "timeout": cty.StringVal("-1s"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.Int(cfg, "retries"); !isAttrError(err, "retries") {
		t.Errorf("Int(1.5) error = %v", err)
	}
	if _, err := sdk.Duration(cfg, "timeout"); !isAttrError(err, "timeout") {
		t.Errorf("Duration(-1s) error = %v", err)
	}
}

// TestGetterMistakes checks that a getter panics, naming what is wrong, on
// a mistake of the plugin's: an attribute its schema does not have (a
// misspelt name read as unset would hide the mistake), one of another type,
// or no configuration at all.
func TestGetterMistakes(t *testing.T) {
	cfg, err := schema.Config(map[string]cty.Value{"servers": cty.ListValEmpty(cty.String)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		get  func()
		want string
	}{
		{"misspelt string", func() { sdk.String(cfg, "timout") },
			`sdk.String(cfg, "timout"): the configuration has no attribute "timout"; its schema has retries, servers, tcp, timeout`},
		{"misspelt bool", func() { sdk.Bool(cfg, "tpc") }, `sdk.Bool(cfg, "tpc"): the configuration has no attribute "tpc"`},
		{"misspelt list", func() { sdk.Strings(cfg, "server") }, `sdk.Strings(cfg, "server"): the configuration has no attribute "server"`},
		{"misspelt number", func() { _, _ = sdk.Int(cfg, "retry") }, `sdk.Int(cfg, "retry"): the configuration has no attribute "retry"`},
		{"misspelt duration", func() { _, _ = sdk.Duration(cfg, "time") }, `sdk.Duration(cfg, "time"): the configuration has no attribute "time"`},
		{"misspelt value", func() { sdk.Value(cfg, "tcp_") }, `sdk.Value(cfg, "tcp_"): the configuration has no attribute "tcp_"`},
		{"string of a list", func() { sdk.String(cfg, "servers") }, `sdk.String(cfg, "servers"): attribute "servers" is of type list of string, not string`},
		{"bool of a string", func() { sdk.Bool(cfg, "timeout") }, `sdk.Bool(cfg, "timeout"): attribute "timeout" is of type string, not bool`},
		{"list of a bool", func() { sdk.Strings(cfg, "tcp") }, `sdk.Strings(cfg, "tcp"): attribute "tcp" is of type bool, not a list or set of strings`},
		{"number of a string", func() { _, _ = sdk.Int(cfg, "timeout") }, `sdk.Int(cfg, "timeout"): attribute "timeout" is of type string, not number`},
		{"duration of a number", func() { _, _ = sdk.Duration(cfg, "retries") }, `sdk.Duration(cfg, "retries"): attribute "retries" is of type number, not string`},
		{"no configuration", func() { sdk.String(cty.NilVal, "timeout") },
			`sdk.String(cfg, "timeout"): cfg is cty.NilVal, not a configuration of a schema (Schema.Config builds one)`},
		{"not an object", func() { sdk.String(cty.StringVal("x"), "timeout") },
			`sdk.String(cfg, "timeout"): cfg is of type string, not a configuration of a schema (Schema.Config builds one)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, tt.want) {
					t.Errorf("panic %q, want %q", msg, tt.want)
				}
			}()
			tt.get()
		})
	}
	// A null configuration of the schema's type reads as unset.
	null := cty.NullVal(schema.ObjectType())
	if sdk.String(null, "timeout") != "" || sdk.Strings(null, "servers") != nil || !sdk.Value(null, "tcp").IsNull() {
		t.Error("a null configuration's attributes must read as zero values")
	}
}

func isAttrError(err error, attr string) bool {
	ae, ok := sdk.AsAttrError(err)
	return ok && ae.Attr == attr
}

func TestSpan(t *testing.T) {
	callAt := time.Now()
	time.Sleep(5 * time.Millisecond)
	span := sdk.StartSpan(sdk.PhaseConnect, callAt)
	time.Sleep(10 * time.Millisecond)
	p := span.End(true, nil)
	if p.Name != sdk.PhaseConnect || !p.OK || p.Attrs == nil {
		t.Errorf("phase = %+v", p)
	}
	if p.Start < 5*time.Millisecond || p.Duration < 10*time.Millisecond || p.Duration > 60*time.Millisecond {
		t.Errorf("start %v duration %v, want >= 5ms and about 10ms", p.Start, p.Duration)
	}
}

func TestContextClass(t *testing.T) {
	if c := sdk.ContextClass(context.Background(), sdk.ClassTCPTimeout); c != "" {
		t.Errorf("live context: %q", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c := sdk.ContextClass(ctx, sdk.ClassTCPTimeout); c != sdk.ClassCanceled {
		t.Errorf("canceled context: %q", c)
	}
	ctx, cancel = context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if c := sdk.ContextClass(ctx, sdk.ClassTCPTimeout); c != sdk.ClassTCPTimeout {
		t.Errorf("expired context: %q", c)
	}
}

func TestPluginNew(t *testing.T) {
	p := &sdk.Plugin{Info: sdk.Info{Name: "only-dialer"}, NewDialer: func(cty.Value) (sdk.Dialer, error) {
		return nil, errors.New("boom")
	}}
	if got := p.Kinds(); !cmp.Equal(got, []sdk.Kind{sdk.KindDialer}) {
		t.Errorf("Kinds = %v", got)
	}
	if _, err := p.New(sdk.KindResolver, cty.EmptyObjectVal); err == nil {
		t.Error("New(resolver) on a dialer-only plugin succeeded")
	}
	if _, err := p.New(sdk.KindDialer, cty.EmptyObjectVal); err == nil || err.Error() != "boom" {
		t.Errorf("New(dialer) error = %v", err)
	}
}

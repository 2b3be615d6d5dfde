package pluginrpc

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// This file is the one converter between the sdk's types and probe.v1's,
// both ways: the plugin's side encodes what its components answer, probe's
// side decodes it, and each pair below is the inverse of the other.

// schemaToProto encodes a schema.
func schemaToProto(s *sdk.Schema) (*probev1.Schema, error) {
	out := &probev1.Schema{}
	for _, a := range s.Attributes {
		ty, err := ctyjson.MarshalType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: encode type: %w", a.Name, err)
		}
		pa := &probev1.Attribute{Name: a.Name, Type: ty, Required: a.Required, Description: a.Description}
		if a.Default != cty.NilVal {
			if pa.Default, err = ctyjson.Marshal(a.Default, a.Type); err != nil {
				return nil, fmt.Errorf("attribute %s: encode default: %w", a.Name, err)
			}
		}
		out.Attributes = append(out.Attributes, pa)
	}
	return out, nil
}

// schemaFromProto decodes a schema.
func schemaFromProto(s *probev1.Schema) (sdk.Schema, error) {
	var out sdk.Schema
	for _, pa := range s.GetAttributes() {
		ty, err := ctyjson.UnmarshalType(pa.Type)
		if err != nil {
			return sdk.Schema{}, fmt.Errorf("attribute %s: decode type: %w", pa.Name, err)
		}
		a := sdk.Attribute{Name: pa.Name, Type: ty, Required: pa.Required, Description: pa.Description}
		if len(pa.Default) > 0 {
			if a.Default, err = ctyjson.Unmarshal(pa.Default, ty); err != nil {
				return sdk.Schema{}, fmt.Errorf("attribute %s: decode default: %w", pa.Name, err)
			}
		}
		out.Attributes = append(out.Attributes, a)
	}
	return out, nil
}

// configToProto encodes a component's configuration, a value of its
// schema's object type.
func configToProto(s *sdk.Schema, cfg cty.Value) ([]byte, error) {
	return ctyjson.Marshal(cfg, s.ObjectType())
}

// configFromProto decodes a component's configuration against its schema.
func configFromProto(s *sdk.Schema, raw []byte) (cty.Value, error) {
	return ctyjson.Unmarshal(raw, s.ObjectType())
}

// phasesToProto encodes phases.
func phasesToProto(phases []sdk.Phase) ([]*probev1.Phase, error) {
	out := make([]*probev1.Phase, 0, len(phases))
	for _, p := range phases {
		attrs, err := probev1.AppendAttrs(nil, p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: encode attrs: %w", p.Name, err)
		}
		out = append(out, &probev1.Phase{Name: p.Name, StartNs: int64(p.Start), DurationNs: int64(p.Duration), Ok: p.OK, Attrs: attrs})
	}
	return out, nil
}

// phasesFromProto decodes phases.
func phasesFromProto(phases []*probev1.Phase) ([]sdk.Phase, error) {
	out := make([]sdk.Phase, 0, len(phases))
	for _, p := range phases {
		attrs, err := probev1.DecodeAttrs(p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: decode attrs: %w", p.Name, err)
		}
		out = append(out, sdk.Phase{Name: p.Name, Start: time.Duration(p.StartNs), Duration: time.Duration(p.DurationNs), OK: p.Ok, Attrs: attrs})
	}
	return out, nil
}

// failureToProto encodes a failure; nil stays nil.
func failureToProto(f *sdk.Failure) *probev1.Failure {
	if f == nil {
		return nil
	}
	return &probev1.Failure{Phase: f.Phase, Class: string(f.Class), Message: f.Message}
}

// failureFromProto decodes a failure; nil stays nil.
func failureFromProto(f *probev1.Failure) *sdk.Failure {
	if f == nil {
		return nil
	}
	return &sdk.Failure{Phase: f.Phase, Class: sdk.Class(f.Class), Message: f.Message}
}

// attrErrorToProto encodes a configuration error about one attribute.
func attrErrorToProto(ae *sdk.AttrError) *probev1.AttrError {
	return &probev1.AttrError{Attr: ae.Attr, Summary: ae.Summary, Detail: ae.Detail}
}

// attrErrorFromProto decodes a configuration error about one attribute.
func attrErrorFromProto(ae *probev1.AttrError) *sdk.AttrError {
	return &sdk.AttrError{Attr: ae.Attr, Summary: ae.Summary, Detail: ae.Detail}
}

// deadlineToProto encodes a deadline as Unix nanoseconds, 0 for none.
func deadlineToProto(d time.Time, ok bool) int64 {
	if !ok {
		return 0
	}
	return d.UnixNano()
}

// deadlineFromProto decodes a deadline; ok is false for none.
func deadlineFromProto(unixNs int64) (d time.Time, ok bool) {
	if unixNs == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, unixNs), true
}

// addressesToProto encodes a resolver's addresses.
func addressesToProto(addrs []netip.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// addressesFromProto decodes a resolver's addresses; the error quotes the
// first that does not parse.
func addressesFromProto(addrs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("a bad address %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

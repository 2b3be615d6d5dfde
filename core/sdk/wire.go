package sdk

import (
	"encoding/json"
	"fmt"

	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// This file encodes the sdk's types for the wire, on the plugin's side of the
// boundary; core/pluginhost decodes them on probe's.

// schemaToProto encodes a schema for the wire.
func schemaToProto(s *Schema) (*probev1.Schema, error) {
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

// ObjectType is the cty type of a configuration of the schema.
func (s *Schema) ObjectType() cty.Type {
	attrs := make(map[string]cty.Type, len(s.Attributes))
	for _, a := range s.Attributes {
		attrs[a.Name] = a.Type
	}
	return cty.Object(attrs)
}

// phasesToProto encodes phases for the wire.
func phasesToProto(phases []Phase) ([]*probev1.Phase, error) {
	out := make([]*probev1.Phase, 0, len(phases))
	for _, p := range phases {
		attrs, err := valueMap(p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: encode attrs: %w", p.Name, err)
		}
		out = append(out, &probev1.Phase{Name: p.Name, StartNs: int64(p.Start), DurationNs: int64(p.Duration), Ok: p.OK, Attrs: attrs})
	}
	return out, nil
}

// value encodes an attribute value with its Go type, so that probe decodes
// it to the type the plugin reported. The types kept are string, bool, int,
// int64, float64, []string, map[string]any, []any and []map[string]any; any
// other value travels as JSON and comes back as encoding/json decodes it.
func value(v any) (*probev1.Value, error) {
	switch v := v.(type) {
	case string:
		return &probev1.Value{Kind: &probev1.Value_String_{String_: v}}, nil
	case bool:
		return &probev1.Value{Kind: &probev1.Value_Bool{Bool: v}}, nil
	case int:
		return &probev1.Value{Kind: &probev1.Value_Int{Int: int64(v)}}, nil
	case int64:
		return &probev1.Value{Kind: &probev1.Value_Int64{Int64: v}}, nil
	case float64:
		return &probev1.Value{Kind: &probev1.Value_Float64{Float64: v}}, nil
	case []string:
		return &probev1.Value{Kind: &probev1.Value_Strings{Strings: &probev1.StringList{Values: v}}}, nil
	case map[string]any:
		m, err := valueMap(v)
		return &probev1.Value{Kind: &probev1.Value_Map{Map: &probev1.Map{Values: m}}}, err
	case []any:
		l, err := valueList(v, value)
		return &probev1.Value{Kind: &probev1.Value_List{List: &probev1.List{Values: l}}}, err
	case []map[string]any:
		l, err := valueList(v, func(m map[string]any) (*probev1.Map, error) {
			vm, err := valueMap(m)
			return &probev1.Map{Values: vm}, err
		})
		return &probev1.Value{Kind: &probev1.Value_Maps{Maps: &probev1.MapList{Values: l}}}, err
	default:
		raw, err := json.Marshal(v)
		return &probev1.Value{Kind: &probev1.Value_Json{Json: raw}}, err
	}
}

// valueMap encodes each value of m.
func valueMap(m map[string]any) (map[string]*probev1.Value, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*probev1.Value, len(m))
	for k, v := range m {
		pv, err := value(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = pv
	}
	return out, nil
}

// valueList encodes each element of list with enc.
func valueList[E, T any](list []E, enc func(E) (T, error)) ([]T, error) {
	out := make([]T, len(list))
	for i, e := range list {
		var err error
		if out[i], err = enc(e); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

// failureToProto encodes a failure for the wire; nil stays nil.
func failureToProto(f *Failure) *probev1.Failure {
	if f == nil {
		return nil
	}
	return &probev1.Failure{Phase: f.Phase, Class: string(f.Class), Message: f.Message}
}

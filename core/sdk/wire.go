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
		m, err := typedMap(p.Attrs)
		var attrs []byte
		if err == nil {
			attrs, err = json.Marshal(m)
		}
		if err != nil {
			return nil, fmt.Errorf("phase %s: encode attrs: %w", p.Name, err)
		}
		out = append(out, &probev1.Phase{Name: p.Name, StartNs: int64(p.Start), DurationNs: int64(p.Duration), Ok: p.OK, Attrs: attrs})
	}
	return out, nil
}

// typedValue is an attribute value on the wire: the JSON of the value and
// its Go type, so that probe decodes it to the type the plugin reported
// (JSON alone turns an int into a float64 and a []string into a []any).
// The types are "string", "bool", "int", "int64", "float64", "[]string",
// "map" (a map[string]any, as an object of typed values), "[]any" and
// "[]map" (a []map[string]any), as arrays of typed values; any other value
// travels as "json" and comes back as encoding/json decodes it.
type typedValue struct {
	Type  string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// typed encodes v as a typedValue.
func typed(v any) (typedValue, error) {
	var (
		ty    string
		inner any = v
		err   error
	)
	switch v := v.(type) {
	case string:
		ty = "string"
	case bool:
		ty = "bool"
	case int:
		ty = "int"
	case int64:
		ty = "int64"
	case float64:
		ty = "float64"
	case []string:
		ty = "[]string"
	case map[string]any:
		ty = "map"
		inner, err = typedMap(v)
	case []any:
		ty = "[]any"
		inner, err = typedList(v, typed)
	case []map[string]any:
		ty = "[]map"
		inner, err = typedList(v, typedMap)
	default:
		ty = "json"
	}
	if err != nil {
		return typedValue{}, err
	}
	raw, err := json.Marshal(inner)
	return typedValue{Type: ty, Value: raw}, err
}

// typedMap encodes each value of m as a typedValue.
func typedMap(m map[string]any) (map[string]typedValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]typedValue, len(m))
	for k, v := range m {
		tv, err := typed(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = tv
	}
	return out, nil
}

// typedList encodes each element of list with enc.
func typedList[E, T any](list []E, enc func(E) (T, error)) ([]T, error) {
	if list == nil {
		return nil, nil
	}
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

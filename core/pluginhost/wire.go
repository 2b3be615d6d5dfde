package pluginhost

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/probe-dev/probe/core/proto/probev1"
	"github.com/probe-dev/probe/core/sdk"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// This file decodes the wire protocol's types into the sdk's, on probe's
// side of the boundary; core/sdk encodes them on the plugin's.

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

// phasesFromProto decodes phases.
func phasesFromProto(phases []*probev1.Phase) ([]sdk.Phase, error) {
	out := make([]sdk.Phase, 0, len(phases))
	for _, p := range phases {
		var attrs map[string]any
		if len(p.Attrs) > 0 {
			var err error
			if attrs, err = decodeAs(p.Attrs, untypedMap); err != nil {
				return nil, fmt.Errorf("phase %s: decode attrs: %w", p.Name, err)
			}
		}
		if attrs == nil {
			attrs = map[string]any{}
		}
		out = append(out, sdk.Phase{Name: p.Name, Start: time.Duration(p.StartNs), Duration: time.Duration(p.DurationNs), OK: p.Ok, Attrs: attrs})
	}
	return out, nil
}

// typedValue is an attribute value as core/sdk puts it on the wire: its Go
// type and its JSON.
type typedValue struct {
	Type  string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// untyped decodes v to the Go type it names.
func untyped(v typedValue) (any, error) {
	switch v.Type {
	case "string":
		return plain[string](v.Value)
	case "bool":
		return plain[bool](v.Value)
	case "int":
		return plain[int](v.Value)
	case "int64":
		return plain[int64](v.Value)
	case "float64":
		return plain[float64](v.Value)
	case "[]string":
		return plain[[]string](v.Value)
	case "map":
		return decodeAs(v.Value, untypedMap)
	case "[]any":
		return decodeAs(v.Value, func(l []typedValue) ([]any, error) { return untypedList(l, untyped) })
	case "[]map":
		return decodeAs(v.Value, func(l []map[string]typedValue) ([]map[string]any, error) {
			return untypedList(l, untypedMap)
		})
	default: // "json", or a type of a later protocol revision
		return plain[any](v.Value)
	}
}

// plain unmarshals raw as a T.
func plain[T any](raw []byte) (any, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// decodeAs unmarshals raw as a W and converts that with conv.
func decodeAs[W, T any](raw []byte, conv func(W) (T, error)) (T, error) {
	var w W
	if err := json.Unmarshal(raw, &w); err != nil {
		var zero T
		return zero, err
	}
	return conv(w)
}

func untypedMap(m map[string]typedValue) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		var err error
		if out[k], err = untyped(v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return out, nil
}

func untypedList[W, T any](list []W, dec func(W) (T, error)) ([]T, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]T, len(list))
	for i, w := range list {
		var err error
		if out[i], err = dec(w); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

func failureFromProto(f *probev1.Failure) *sdk.Failure {
	if f == nil {
		return nil
	}
	return &sdk.Failure{Phase: f.Phase, Class: sdk.Class(f.Class), Message: f.Message}
}

// deadlineUnix encodes a deadline as Unix nanoseconds, 0 for none.
func deadlineUnix(d time.Time, ok bool) int64 {
	if !ok {
		return 0
	}
	return d.UnixNano()
}

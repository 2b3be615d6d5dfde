package pluginhost

import (
	"encoding/json"
	"fmt"
	"slices"
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
		attrs, err := valueMap(p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: decode attrs: %w", p.Name, err)
		}
		out = append(out, sdk.Phase{Name: p.Name, Start: time.Duration(p.StartNs), Duration: time.Duration(p.DurationNs), OK: p.Ok, Attrs: attrs})
	}
	return out, nil
}

// value decodes an attribute value to the Go type it was sent as.
func value(v *probev1.Value) (any, error) {
	switch k := v.GetKind().(type) {
	case *probev1.Value_String_:
		return k.String_, nil
	case *probev1.Value_Bool:
		return k.Bool, nil
	case *probev1.Value_Int:
		return int(k.Int), nil
	case *probev1.Value_Int64:
		return k.Int64, nil
	case *probev1.Value_Float64:
		return k.Float64, nil
	case *probev1.Value_Strings:
		return slices.Clip(k.Strings.GetValues()), nil
	case *probev1.Value_Map:
		return valueMap(k.Map.GetValues())
	case *probev1.Value_List:
		return valueList(k.List.GetValues(), value)
	case *probev1.Value_Maps:
		return valueList(k.Maps.GetValues(), func(m *probev1.Map) (map[string]any, error) { return valueMap(m.GetValues()) })
	case *probev1.Value_Json:
		var out any
		if err := json.Unmarshal(k.Json, &out); err != nil {
			return nil, fmt.Errorf("decode JSON value: %w", err)
		}
		return out, nil
	default: // nil, or a kind of a later protocol revision
		return nil, fmt.Errorf("value of an unknown kind %T", k)
	}
}

// valueMap decodes each value of m; never nil.
func valueMap(m map[string]*probev1.Value) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		var err error
		if out[k], err = value(v); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return out, nil
}

// valueList decodes each element of list with dec.
func valueList[W, T any](list []W, dec func(W) (T, error)) ([]T, error) {
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

package pluginhost

import (
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
		attrs, err := probev1.DecodeAttrs(p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: decode attrs: %w", p.Name, err)
		}
		out = append(out, sdk.Phase{Name: p.Name, Start: time.Duration(p.StartNs), Duration: time.Duration(p.DurationNs), OK: p.Ok, Attrs: attrs})
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

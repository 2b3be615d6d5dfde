package sdk

import (
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
		attrs, err := probev1.AppendAttrs(nil, p.Attrs)
		if err != nil {
			return nil, fmt.Errorf("phase %s: encode attrs: %w", p.Name, err)
		}
		out = append(out, &probev1.Phase{Name: p.Name, StartNs: int64(p.Start), DurationNs: int64(p.Duration), Ok: p.OK, Attrs: attrs})
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

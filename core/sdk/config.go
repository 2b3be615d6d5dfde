package sdk

import (
	"fmt"
	"math/big"
	"time"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Config builds a configuration value for the schema from Go-side values, as
// the core does from a pipeline file: each value is converted to its
// attribute's type, unset attributes take their default (or null), and an
// unknown or missing required attribute is an error. Use it to configure a
// component from Go code and in tests.
func (s *Schema) Config(values map[string]cty.Value) (cty.Value, error) {
	for name := range values {
		if s.Attr(name) == nil {
			return cty.NilVal, &AttrError{Attr: name, Summary: "Unsupported argument",
				Detail: fmt.Sprintf("An argument named %q is not expected here.", name)}
		}
	}
	obj := make(map[string]cty.Value, len(s.Attributes))
	for _, a := range s.Attributes {
		v, set := values[a.Name]
		switch {
		case set && !v.IsNull():
			cv, err := convert.Convert(v, a.Type)
			if err != nil {
				return cty.NilVal, &AttrError{Attr: a.Name, Summary: "Incorrect attribute value type",
					Detail: fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err)}
			}
			obj[a.Name] = cv
		case a.Required:
			return cty.NilVal, &AttrError{Attr: a.Name, Summary: "Missing required argument",
				Detail: fmt.Sprintf("The argument %q is required, but no definition was found.", a.Name)}
		case a.Default != cty.NilVal:
			obj[a.Name] = a.Default
		default:
			obj[a.Name] = cty.NullVal(a.Type)
		}
	}
	return cty.ObjectVal(obj), nil
}

// attr returns cfg's attribute name, or a null value when cfg is null or has
// no such attribute.
func attr(cfg cty.Value, name string) cty.Value {
	if cfg.IsNull() || !cfg.IsKnown() || !cfg.Type().IsObjectType() || !cfg.Type().HasAttribute(name) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return cfg.GetAttr(name)
}

// String returns the string attribute name of cfg, "" when null.
func String(cfg cty.Value, name string) string {
	v := attr(cfg, name)
	if v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// Bool returns the bool attribute name of cfg, false when null.
func Bool(cfg cty.Value, name string) bool {
	v := attr(cfg, name)
	if v.IsNull() || v.Type() != cty.Bool {
		return false
	}
	return v.True()
}

// Strings returns the list-of-strings attribute name of cfg, nil when null.
func Strings(cfg cty.Value, name string) []string {
	v := attr(cfg, name)
	if v.IsNull() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if !e.IsNull() && e.Type() == cty.String {
			out = append(out, e.AsString())
		}
	}
	return out
}

// Int returns the whole-number attribute name of cfg, 0 when null, and an
// *AttrError when it is not a whole number.
func Int(cfg cty.Value, name string) (int, error) {
	v := attr(cfg, name)
	if v.IsNull() || v.Type() != cty.Number {
		return 0, nil
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if acc != big.Exact {
		return 0, AttrErrorf(name, "Invalid number", "%s must be a whole number, got %s.", name, bf.Text('g', -1))
	}
	return int(i), nil
}

// Duration returns the duration attribute name of cfg, written as a Go
// duration string ("2s", "150ms"); 0 when null, an *AttrError when it does
// not parse or is negative.
func Duration(cfg cty.Value, name string) (time.Duration, error) {
	s := String(cfg, name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, AttrErrorf(name, "Invalid duration",
			"%s must be a positive duration such as \"2s\" or \"150ms\", got %q.", name, s)
	}
	return d, nil
}

package sdk

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
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

// A constructor reads its configuration with the getters below. A name
// the configuration does not have, or an attribute of another type than
// the getter reads, is a mistake in the plugin, not in the user's file (the
// core has checked the file against the schema): the getter panics with a
// message that names the attribute and the schema's, so that the plugin's
// own tests catch a misspelt name at once instead of reading it as unset.
// Unset attributes read as their zero value.

// attr returns cfg's attribute name, null when cfg is null or unknown. It
// panics when cfg is not a configuration or has no attribute name.
func attr(getter string, cfg cty.Value, name string) cty.Value {
	ty := cfg.Type()
	if ty == cty.NilType || !ty.IsObjectType() {
		what := "cty.NilVal"
		if ty != cty.NilType {
			what = "of type " + ty.FriendlyName()
		}
		panic(fmt.Sprintf("sdk.%s(cfg, %q): cfg is %s, not a configuration of a schema (Schema.Config builds one)", getter, name, what))
	}
	if !ty.HasAttribute(name) {
		names := slices.Sorted(maps.Keys(ty.AttributeTypes()))
		panic(fmt.Sprintf("sdk.%s(cfg, %q): the configuration has no attribute %q; its schema has %s", getter, name, name, strings.Join(names, ", ")))
	}
	if cfg.IsNull() || !cfg.IsKnown() {
		return cty.NullVal(ty.AttributeType(name))
	}
	return cfg.GetAttr(name)
}

// typed returns cfg's attribute name, which must be of a type ok accepts
// (want names it); it panics otherwise, as attr does.
func typed(getter string, cfg cty.Value, name, want string, ok func(cty.Type) bool) cty.Value {
	v := attr(getter, cfg, name)
	if !ok(v.Type()) {
		panic(fmt.Sprintf("sdk.%s(cfg, %q): attribute %q is of type %s, not %s", getter, name, name, v.Type().FriendlyName(), want))
	}
	return v
}

// Value returns the attribute name of cfg as it is, null when unset, for a
// type the other getters do not read (a map).
func Value(cfg cty.Value, name string) cty.Value {
	return attr("Value", cfg, name)
}

// String returns the string attribute name of cfg, "" when null.
func String(cfg cty.Value, name string) string {
	v := typed("String", cfg, name, "string", func(t cty.Type) bool { return t == cty.String })
	if v.IsNull() || !v.IsKnown() {
		return ""
	}
	return v.AsString()
}

// Bool returns the bool attribute name of cfg, false when null.
func Bool(cfg cty.Value, name string) bool {
	v := typed("Bool", cfg, name, "bool", func(t cty.Type) bool { return t == cty.Bool })
	if v.IsNull() || !v.IsKnown() {
		return false
	}
	return v.True()
}

// Strings returns the list-of-strings attribute name of cfg (a list or a
// set), nil when null.
func Strings(cfg cty.Value, name string) []string {
	v := typed("Strings", cfg, name, "a list or set of strings", func(t cty.Type) bool {
		return (t.IsListType() || t.IsSetType()) && t.ElementType() == cty.String
	})
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if !e.IsNull() && e.IsKnown() {
			out = append(out, e.AsString())
		}
	}
	return out
}

// Int returns the whole-number attribute name of cfg, 0 when null, and an
// *AttrError when it is not a whole number.
func Int(cfg cty.Value, name string) (int, error) {
	v := typed("Int", cfg, name, "number", func(t cty.Type) bool { return t == cty.Number })
	if v.IsNull() || !v.IsKnown() {
		return 0, nil
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if acc != big.Exact {
		return 0, AttrErrorf(name, "Invalid number", "%s must be a whole number, got %s.", name, bf.Text('g', -1))
	}
	return int(i), nil
}

// Duration returns the duration attribute name of cfg, a string written as
// a Go duration ("2s", "150ms"); 0 when null, an *AttrError when it does
// not parse or is negative.
func Duration(cfg cty.Value, name string) (time.Duration, error) {
	v := typed("Duration", cfg, name, "string", func(t cty.Type) bool { return t == cty.String })
	if v.IsNull() || !v.IsKnown() || v.AsString() == "" {
		return 0, nil
	}
	s := v.AsString()
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, AttrErrorf(name, "Invalid duration",
			"%s must be a positive duration such as \"2s\" or \"150ms\", got %q.", name, s)
	}
	return d, nil
}

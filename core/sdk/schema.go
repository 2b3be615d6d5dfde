package sdk

import (
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"
)

// Kind is the kind of a component.
type Kind string

// The component kinds.
const (
	KindResolver  Kind = "resolver"
	KindDialer    Kind = "dialer"
	KindHandshake Kind = "handshake"
)

// Kinds lists every component kind, in pipeline order.
var Kinds = []Kind{KindResolver, KindDialer, KindHandshake}

// Info describes a plugin.
type Info struct {
	// Name is the plugin's name as pipelines refer to it ("dns-miekg").
	Name string
	// Version is the plugin's version, free-form.
	Version string
	// Description is one line that says what the plugin is for.
	Description string
}

// Schema is the configuration a component accepts: the attributes of its
// block in a pipeline file, beside the core's own (plugin, match).
type Schema struct {
	// Attributes in the order the documentation lists them.
	Attributes []Attribute
}

// Attribute is one configuration attribute.
type Attribute struct {
	// Name is the attribute's name in HCL.
	Name string
	// Type is its cty type (cty.String, cty.Number, cty.Bool, cty.List(cty.String), ...).
	Type cty.Type
	// Required attributes must be set.
	Required bool
	// Default is the value an unset optional attribute takes; cty.NilVal
	// (the zero value) means null.
	Default cty.Value
	// Description is one sentence for `probe plugins show`.
	Description string
}

// Attr returns the attribute named name, or nil.
func (s *Schema) Attr(name string) *Attribute {
	for i := range s.Attributes {
		if s.Attributes[i].Name == name {
			return &s.Attributes[i]
		}
	}
	return nil
}

// ObjectType is the cty type of a configuration of the schema: an object
// with an attribute of each one's type.
func (s *Schema) ObjectType() cty.Type {
	attrs := make(map[string]cty.Type, len(s.Attributes))
	for _, a := range s.Attributes {
		attrs[a.Name] = a.Type
	}
	return cty.Object(attrs)
}

// AttrError is a configuration error about one attribute. A constructor
// returns it so that the core can point at the attribute's line in the
// user's file.
type AttrError struct {
	// Attr is the attribute's name.
	Attr string
	// Summary is a short sentence ("Invalid transport").
	Summary string
	// Detail says what was found and what was expected.
	Detail string
}

func (e *AttrError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Attr, e.Summary, e.Detail)
}

// AttrErrorf returns an *AttrError for attr with a formatted detail.
func AttrErrorf(attr, summary, format string, args ...any) error {
	return &AttrError{Attr: attr, Summary: summary, Detail: fmt.Sprintf(format, args...)}
}

// AsAttrError reports whether err is, or wraps, an *AttrError.
func AsAttrError(err error) (*AttrError, bool) {
	var ae *AttrError
	ok := errors.As(err, &ae)
	return ae, ok
}

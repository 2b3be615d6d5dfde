package config

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// maxVantage bounds a vantage name, in bytes: a label value on every series.
const maxVantage = 128

// CheckVantage says why v cannot name a vantage point: a vantage is a
// label value on every series and a field of every record, so it is a
// short, printable, non-empty name ("eu-west", "dc1/rack4").
func CheckVantage(v string) error {
	switch {
	case v == "":
		return errors.New("the vantage is empty")
	case len(v) > maxVantage:
		return fmt.Errorf("the vantage is %d bytes long, at most %d", len(v), maxVantage)
	case !utf8.ValidString(v):
		return errors.New("the vantage is not valid UTF-8")
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("the vantage %q holds an unprintable character", v)
		}
	}
	return nil
}

// vantage decodes the top-level vantage attribute, when there is one.
func (d *decoder) vantage(a *hcl.Attribute) {
	if a == nil {
		return
	}
	v, ok := d.eval(a, d.ctx, cty.String)
	if !ok || v.IsNull() {
		return
	}
	if err := CheckVantage(v.AsString()); err != nil {
		d.attrError(a, "Invalid vantage", err.Error()+".")
		return
	}
	d.file.Vantage = v.AsString()
}

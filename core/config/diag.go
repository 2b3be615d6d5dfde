package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// didYouMean returns ` Did you mean "x"?` for the option nearest to given,
// or "" when none is near.
func didYouMean(given string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if dist := levenshtein.Distance(given, o, nil); dist < bestDist {
			best, bestDist = o, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func joinNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return `"` + strings.Join(names, `", "`) + `"`
}

func duplicate(kind, name string, rng, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s", kind),
		Detail:   fmt.Sprintf("A %s named %q was already declared at %s. Names must be unique.", kind, name, prev),
		Subject:  rng.Ptr(),
	}
}

// eval evaluates attribute a in the decoder's context and converts it to ty.
// ok is false when the value is unusable (diagnostics already recorded).
func (d *decoder) eval(a *hcl.Attribute, ctx *hcl.EvalContext, ty cty.Type) (cty.Value, bool) {
	val, diags := a.Expr.Value(ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !d.chargeValue(val, a.Expr.Range(), fmt.Sprintf("the value of %s", a.Name)) {
		return cty.NilVal, false
	}
	val, _ = d.unmark(val)
	if !val.IsWhollyKnown() {
		// Unknown comes from a variable that already has an error.
		return cty.NilVal, false
	}
	cv, err := d.budget.convert(val, ty, fmt.Sprintf("the value of %s", a.Name))
	if le := (*limitError)(nil); errors.As(err, &le) {
		if diag := d.limitDiag(le, a.Expr.Range()); diag != nil {
			d.diags = append(d.diags, diag)
		}
		return cty.NilVal, false
	}
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
		})
		return cty.NilVal, false
	}
	if cv.IsNull() {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid attribute value",
			Detail:   fmt.Sprintf("The attribute %q must not be null.", a.Name),
			Subject:  a.Expr.Range().Ptr(),
		})
		return cty.NilVal, false
	}
	return cv, true
}

// attrError records an error about attribute a's value.
func (d *decoder) attrError(a *hcl.Attribute, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail,
		Subject: a.Expr.Range().Ptr()})
}

// suggestAttributes adds "Did you mean" to HCL's "Unsupported attribute"
// diagnostics of references to the file's objects (var.prot, each.vaule):
// the attribute nearest to the one asked for, among those the object has.
func suggestAttributes(diags hcl.Diagnostics) {
	for _, diag := range diags {
		if diag.Summary != "Unsupported attribute" || diag.Expression == nil || diag.EvalContext == nil ||
			strings.Contains(diag.Detail, "Did you mean") {
			continue
		}
		for _, tr := range diag.Expression.Variables() {
			if hint := missingAttribute(tr, diag.EvalContext); hint != "" {
				diag.Detail += hint
				break
			}
		}
	}
}

// missingAttribute follows tr in ctx to the first attribute its object
// lacks, and returns the "Did you mean" of the nearest one it has; "" when
// every step resolves or none is near.
func missingAttribute(tr hcl.Traversal, ctx *hcl.EvalContext) string {
	var val cty.Value
	for c := ctx; c != nil && val == cty.NilVal; c = c.Parent() {
		val = c.Variables[tr.RootName()]
	}
	for _, step := range tr[1:] {
		attr, ok := step.(hcl.TraverseAttr)
		if !ok || val == cty.NilVal || !val.Type().IsObjectType() {
			return ""
		}
		if !val.Type().HasAttribute(attr.Name) {
			names := make([]string, 0, len(val.Type().AttributeTypes()))
			for n := range val.Type().AttributeTypes() {
				names = append(names, n)
			}
			sort.Strings(names)
			return didYouMean(attr.Name, names)
		}
		if val.IsNull() || !val.IsKnown() {
			return ""
		}
		val = val.GetAttr(attr.Name)
	}
	return ""
}

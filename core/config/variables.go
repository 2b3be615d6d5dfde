package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvVarPrefix is the prefix of environment variables that set pipeline
// variables: PROBE_VAR_api_host sets var.api_host.
const EnvVarPrefix = "PROBE_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"},
		{Name: "type"},
		{Name: "description"},
		{Name: "sensitive"},
	},
}

// sensitiveMark marks the values of variables declared sensitive, so that
// HCL's diagnostics never print them.
const sensitiveMark = "sensitive"

// variable is a declared variable.
type variable struct {
	name      string
	typ       cty.Type
	value     cty.Value
	sensitive bool
	decl      hcl.Range
}

// variables decodes the variable blocks and assigns their values, in rising
// precedence: default, PROBE_VAR_name, -var-file, -var.
func (d *decoder) variables(blocks []*hcl.Block) map[string]cty.Value {
	declared := map[string]*variable{}
	var order []string
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := declared[name]; dup {
			d.diags = append(d.diags, duplicate("variable", name, b.DefRange, prev.decl))
			continue
		}
		if !hclsyntax.ValidIdentifier(name) {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
				Detail:  "A variable name must start with a letter or underscore and contain only letters, digits, underscores and dashes.",
				Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		content, diags := b.Body.Content(variableSchema)
		d.diags = append(d.diags, diags...)
		v := &variable{name: name, typ: cty.DynamicPseudoType, value: cty.NilVal, decl: b.DefRange}
		if a, ok := content.Attributes["type"]; ok {
			ty, diags := typeexpr.TypeConstraint(a.Expr)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				v.typ = ty
			}
		}
		if a, ok := content.Attributes["sensitive"]; ok {
			val, diags := d.evalStatic(a.Expr)
			d.diags = append(d.diags, diags...)
			if val, err := convert.Convert(val, cty.Bool); err != nil || val.IsNull() {
				d.attrError(a, "Invalid sensitive flag", "sensitive must be true or false.")
			} else {
				v.sensitive = val.True()
			}
		}
		if a, ok := content.Attributes["default"]; ok {
			val, diags := d.evalStatic(a.Expr)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				v.value = d.convertVar(v, val, a.Expr.Range())
			}
		}
		declared[name] = v
		order = append(order, name)
	}

	// PROBE_VAR_name: only for declared variables; others are ignored so a
	// shared environment can carry variables of several files.
	for _, kv := range d.opts.Environ() {
		k, raw, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, EnvVarPrefix)
		if v := declared[name]; ok && v != nil {
			v.value = d.parseRawVar(v, raw, fmt.Sprintf("environment variable %s", k))
		}
	}
	for _, path := range d.opts.VarFiles {
		d.varFile(path, declared)
	}
	names := make([]string, 0, len(d.opts.Vars))
	for n := range d.opts.Vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		v := declared[name]
		if v == nil {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Value for undeclared variable",
				Detail:  fmt.Sprintf("A variable named %q was assigned with -var, but the file declares no such variable.%s", name, didYouMean(name, order))})
			continue
		}
		v.value = d.parseRawVar(v, d.opts.Vars[name], fmt.Sprintf("-var %s", name))
	}

	out := make(map[string]cty.Value, len(declared))
	for _, name := range order {
		v := declared[name]
		if v.value == cty.NilVal {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "No value for required variable",
				Detail: fmt.Sprintf("The variable %q has no default. Set it with -var %s=VALUE, a -var-file, or the environment variable %s%s.",
					name, name, EnvVarPrefix, name),
				Subject: v.decl.Ptr()})
			out[name] = cty.DynamicVal
			continue
		}
		if v.sensitive {
			d.addSecrets(v.value)
			out[name] = v.value.Mark(sensitiveMark)
			continue
		}
		out[name] = v.value
	}
	return out
}

// addSecrets records the strings of a sensitive value, so that outputs and
// diagnostics can redact them: its strings, its numbers as HCL writes them
// as text ("987654"), which is how a diagnostic quotes a number it rejects,
// and the keys of its maps. Texts shorter than minSecret are not redacted:
// replacing every "on" or "80" would garble output and hide little.
func (d *decoder) addSecrets(v cty.Value) {
	const minSecret = 4
	add := func(text string) {
		if len(text) >= minSecret && !slices.Contains(d.file.Options.Secrets, text) {
			d.file.Options.Secrets = append(d.file.Options.Secrets, text)
		}
	}
	_ = cty.Walk(v, func(path cty.Path, leaf cty.Value) (bool, error) {
		if len(path) > 0 {
			if step, ok := path[len(path)-1].(cty.IndexStep); ok && step.Key.Type() == cty.String && step.Key.IsKnown() {
				add(step.Key.AsString()) // a map's key
			}
		}
		if !leaf.IsKnown() || leaf.IsNull() {
			return true, nil
		}
		switch leaf.Type() {
		case cty.String:
			add(leaf.AsString())
		case cty.Number:
			add(leaf.AsBigFloat().Text('f', -1))
		}
		return true, nil
	})
}

// unmark returns v without its marks, and records as secrets (addSecrets)
// the parts of it that carry the sensitive mark: a sensitive variable's
// value, and every value HCL derived from one (upper(var.token),
// "${var.token}-x", base64encode("user:${var.token}")), which it marks too.
// sensitive says whether there was any.
func (d *decoder) unmark(v cty.Value) (_ cty.Value, sensitive bool) {
	uv, marked := v.UnmarkDeepWithPaths()
	for _, pm := range marked {
		if !pm.Marks.Has(sensitiveMark) {
			continue
		}
		sensitive = true
		part, err := pm.Path.Apply(uv)
		if err != nil { // a set's element: the path's last step holds it
			step, ok := pm.Path[len(pm.Path)-1].(cty.IndexStep)
			if !ok {
				continue
			}
			part = step.Key
		}
		d.addSecrets(part)
	}
	return uv, sensitive
}

// varFile applies a -var-file: an HCL file of name = value attributes.
func (d *decoder) varFile(path string, declared map[string]*variable) {
	src, diag := readSource(path, "variable file")
	if diag == nil {
		diag = d.loader.checkSource(path, src, "variable file")
	}
	if diag != nil {
		d.diags = append(d.diags, diag)
		return
	}
	f, diags := d.loader.parser.ParseHCL(src, path)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	d.diags = append(d.diags, diags...)
	for name, a := range attrs {
		v := declared[name]
		if v == nil {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: "Value for undeclared variable",
				Detail:  fmt.Sprintf("The variable file assigns %q, but the pipeline file declares no such variable.", name),
				Subject: a.NameRange.Ptr()})
			continue
		}
		val, diags := d.evalStatic(a.Expr)
		d.diags = append(d.diags, diags...)
		if !diags.HasErrors() {
			v.value = d.convertVar(v, val, a.Expr.Range())
		}
	}
}

// parseRawVar turns a value given as text (-var, PROBE_VAR_) into v's type:
// taken literally for string and untyped variables, parsed as an HCL
// expression for other types, as Terraform does.
func (d *decoder) parseRawVar(v *variable, raw, from string) cty.Value {
	if v.typ == cty.String || v.typ == cty.DynamicPseudoType {
		return cty.StringVal(raw)
	}
	// The text is parsed as an expression: the limits on a file's source
	// hold for it.
	if err := scanSource([]byte(raw), hcl.InitialPos); err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail:  fmt.Sprintf("The value from %s was not parsed: at its line %d, column %d: %s", from, err.pos.Line, err.pos.Column, err.detail),
			Subject: v.decl.Ptr()})
		return cty.DynamicVal
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), from, hcl.InitialPos)
	if !diags.HasErrors() {
		var val cty.Value
		if val, diags = d.evalStatic(expr); !diags.HasErrors() {
			return d.convertVar(v, val, v.decl)
		}
	}
	shown := fmt.Sprintf("%q", raw)
	if v.sensitive {
		shown = "(sensitive value)"
	}
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
		Detail:  fmt.Sprintf("The value %s from %s is not a valid %s: %s", shown, from, v.typ.FriendlyName(), diags.Error()),
		Subject: v.decl.Ptr()})
	return cty.DynamicVal
}

func (d *decoder) convertVar(v *variable, val cty.Value, rng hcl.Range) cty.Value {
	cv, err := d.budget.convert(val, v.typ, fmt.Sprintf("the value of variable %q", v.name))
	var le *limitError
	if errors.As(err, &le) {
		if diag := d.limitDiag(le, rng); diag != nil {
			d.diags = append(d.diags, diag)
		}
		return cty.DynamicVal
	}
	if err != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail:  fmt.Sprintf("The value for variable %q is not a %s: %s.", v.name, v.typ.FriendlyName(), err),
			Subject: rng.Ptr()})
		return cty.DynamicVal
	}
	return cv
}

package config

import (
	"fmt"
	"slices"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

var pipelineSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "resolvers", Required: true},
		{Name: "dialer", Required: true},
		{Name: "handshakes"},
		{Name: "address_policy"},
	},
}

// pipelines decodes the pipeline blocks into engine pipelines.
func (d *decoder) pipelines(blocks []*hcl.Block) {
	d.file.Pipelines = map[string]*engine.Pipeline{}
	decls := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := decls[name]; dup {
			d.diags = append(d.diags, duplicate("pipeline", name, b.DefRange, prev))
			continue
		}
		decls[name] = b.DefRange
		content, diags := b.Body.Content(pipelineSchema)
		d.diags = append(d.diags, diags...)
		p := &engine.Pipeline{Name: name}
		valid := !diags.HasErrors()
		if a, ok := content.Attributes["resolvers"]; ok {
			for _, c := range d.refList(a, string(sdk.KindResolver)) {
				if c == nil {
					valid = false
					continue
				}
				r, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: c.name, Plugin: c.plugin, Component: c.impl.(sdk.Resolver)}, c.match)
				if err != nil { // reported on the resolver's match already
					valid = false
					continue
				}
				p.Resolvers = append(p.Resolvers, r)
				d.noteSensitive(name, c)
			}
			if valid && len(p.Resolvers) == 0 {
				d.attrError(a, "No resolvers", "A pipeline needs at least one resolver, such as resolvers = [resolver.system].")
				valid = false
			}
		}
		if a, ok := content.Attributes["dialer"]; ok {
			if c := d.ref(a.Expr, string(sdk.KindDialer)); c != nil {
				p.Dialer = engine.Stage[sdk.Dialer]{Name: c.name, Plugin: c.plugin, Component: c.impl.(sdk.Dialer)}
				d.noteSensitive(name, c)
			} else {
				valid = false
			}
		}
		if a, ok := content.Attributes["handshakes"]; ok {
			for _, c := range d.refList(a, string(sdk.KindHandshake)) {
				if c == nil || d.listedTwice(a, p, c) {
					valid = false
					continue
				}
				p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: c.name, Plugin: c.plugin, Component: c.impl.(sdk.Handshaker)})
				d.noteSensitive(name, c)
			}
		}
		p.AddressPolicy = engine.AddressFirst
		if a, ok := content.Attributes["address_policy"]; ok && !d.addressPolicy(a, p) {
			valid = false
		}
		if valid {
			d.file.Pipelines[name] = p
		}
	}
}

// listedTwice reports whether handshake c is in p already, and records
// why that is an error: a block is one handshake of a pipeline. Two blocks
// of one plugin are fine (their phases are then told apart as http and
// http#2).
func (d *decoder) listedTwice(a *hcl.Attribute, p *engine.Pipeline, c *component) bool {
	if !slices.ContainsFunc(p.Handshakes, func(h engine.Stage[sdk.Handshaker]) bool { return h.Name == c.name }) {
		return false
	}
	d.attrError(a, "Handshake listed twice", fmt.Sprintf("handshake.%s is in the handshakes of pipeline %q more than once. "+
		"To run a handshake of plugin %q again, such as a second request, declare another handshake block; "+
		"two phases of one name are told apart by a suffix, as http and http#2.", c.name, p.Name, c.plugin))
	return true
}

// noteSensitive records that pipeline uses c, when c's configuration holds
// a value of a sensitive variable.
func (d *decoder) noteSensitive(pipeline string, c *component) {
	ref := string(c.kind) + "." + c.name
	if !c.sensitive || slices.Contains(d.file.sensitive[pipeline], ref) {
		return
	}
	if d.file.sensitive == nil {
		d.file.sensitive = map[string][]string{}
	}
	d.file.sensitive[pipeline] = append(d.file.sensitive[pipeline], ref)
}

// addressPolicy reads a pipeline's address_policy into p.
func (d *decoder) addressPolicy(a *hcl.Attribute, p *engine.Pipeline) bool {
	v, ok := d.eval(a, d.ctx, cty.String)
	if !ok {
		return false
	}
	p.AddressPolicy = engine.AddressPolicy(v.AsString())
	if slices.Contains(engine.AddressPolicies, p.AddressPolicy) {
		return true
	}
	names := make([]string, len(engine.AddressPolicies))
	for i, ap := range engine.AddressPolicies {
		names[i] = string(ap)
	}
	d.attrError(a, "Invalid address policy", fmt.Sprintf("The address_policy must be one of %s; got %q.%s",
		quoteJoin(names), v.AsString(), didYouMean(v.AsString(), names)))
	return false
}

// refList resolves a list of references such as [resolver.a, resolver.b].
// An entry that does not resolve is nil (its diagnostic recorded).
func (d *decoder) refList(a *hcl.Attribute, kind string) []*component {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference list",
			Detail:  fmt.Sprintf("The attribute %q must be a list of references such as [%s.NAME].", a.Name, kind),
			Subject: a.Expr.Range().Ptr()})
		return []*component{nil}
	}
	out := make([]*component, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, d.ref(e, kind))
	}
	return out
}

// ref resolves one reference KIND.NAME to its decoded component, or
// records why it cannot and returns nil.
func (d *decoder) ref(e hcl.Expression, kind string) *component {
	name, ok := d.refName(e, kind)
	if !ok {
		return nil
	}
	byName := d.components[sdk.Kind(kind)]
	if c, ok := byName[name]; ok {
		return c
	}
	if d.declared(kind, name) {
		return nil // declared, but its own block had errors
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
		Summary: fmt.Sprintf("Reference to undeclared %s", kind),
		Detail:  fmt.Sprintf("There is no %s block named %q in this file.%s", kind, name, didYouMean(name, names)),
		Subject: e.Range().Ptr()})
	return nil
}

// refName reads a static reference KIND.NAME and returns NAME.
func (d *decoder) refName(e hcl.Expression, kind string) (string, bool) {
	tr, diags := hcl.AbsTraversalForExpr(e)
	if !diags.HasErrors() && len(tr) == 2 && tr.RootName() == kind {
		if step, ok := tr[1].(hcl.TraverseAttr); ok {
			return step.Name, true
		}
	}
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference",
		Detail:  fmt.Sprintf("Expected a reference to a %s block, such as %s.NAME.", kind, kind),
		Subject: e.Range().Ptr()})
	return "", false
}

// declared reports whether a block kind "name" exists in the file, whether
// or not it decoded without errors.
func (d *decoder) declared(kind, name string) bool {
	_, ok := d.blockDecls[kind+"."+name]
	return ok
}

package config

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

var pipelineSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "resolvers", Required: true},
		{Name: "dialer", Required: true},
		{Name: "handshakes"},
		{Name: "address_policy"},
	},
}

// pipelineBlocks decodes the pipeline blocks into engine pipelines, one for
// each instance of a block with for_each.
func (d *decoder) pipelineBlocks(blocks []*hcl.Block) {
	d.file.Pipelines = map[string]*engine.Pipeline{}
	d.pipelines = map[string]*block[*engine.Pipeline]{}
	decls := map[string]hcl.Range{} // pipeline names, instances' included
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := d.pipelines[name]; dup {
			d.diags = append(d.diags, duplicate("pipeline", name, b.DefRange, prev.decl))
			continue
		}
		content, diags := b.Body.Content(pipelineSchema)
		d.diags = append(d.diags, diags...)
		x, ok := d.expand(b, content.Attributes["for_each"])
		blk := newBlock[*engine.Pipeline](b, x, ok)
		d.pipelines[name] = blk
		if !ok {
			continue
		}
		for inst := range x.instances(d.ctx) {
			// An instance named like another block ("a[x]") is a duplicate.
			if prev, dup := decls[inst.name]; dup {
				d.diags = append(d.diags, duplicate("pipeline", inst.name, b.DefRange, prev))
				blk.instances[inst.key] = nil
				continue
			}
			decls[inst.name] = b.DefRange
			p := d.pipeline(content, inst)
			if diags.HasErrors() {
				p = nil
			}
			blk.instances[inst.key] = p
			if p != nil {
				d.file.Pipelines[p.Name] = p
			}
		}
	}
}

// pipeline decodes one instance of a pipeline block; nil after an error.
func (d *decoder) pipeline(content *hcl.BodyContent, inst instance) *engine.Pipeline {
	p := &engine.Pipeline{Name: inst.name}
	valid := true
	if a, ok := content.Attributes["resolvers"]; ok {
		for _, c := range d.refList(a, sdk.KindResolver, inst.ctx) {
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
			d.noteSensitive(p.Name, c)
		}
		if valid && len(p.Resolvers) == 0 {
			d.attrError(a, "No resolvers", "A pipeline needs at least one resolver, such as resolvers = [resolver.system].")
			valid = false
		}
	}
	var dialer *component
	if a, ok := content.Attributes["dialer"]; ok {
		if c, ok := resolve(d, d.components[sdk.KindDialer], a.Expr, string(sdk.KindDialer), inst.ctx); ok {
			dialer = c
			p.Dialer = engine.Stage[sdk.Dialer]{Name: c.name, Plugin: c.plugin, Component: c.impl.(sdk.Dialer)}
			d.noteSensitive(p.Name, c)
		} else {
			valid = false
		}
	}
	if a, ok := content.Attributes["handshakes"]; ok {
		for _, c := range d.refList(a, sdk.KindHandshake, inst.ctx) {
			if c == nil || d.listedTwice(a, p, c) {
				valid = false
				continue
			}
			p.Handshakes = append(p.Handshakes, engine.Stage[sdk.Handshaker]{Name: c.name, Plugin: c.plugin, Component: c.impl.(sdk.Handshaker)})
			d.noteSensitive(p.Name, c)
			switch {
			case dialer == nil || dialer.conn == sdk.ConnNone || c.conn == dialer.conn:
			default:
				d.attrError(a, "Handshake does not fit the dialer", fmt.Sprintf("handshake.%s (plugin %q) runs over a %s connection, "+
					"but dialer.%s (plugin %q) makes a %s connection.", c.name, c.plugin, c.conn, dialer.name, dialer.plugin, dialer.conn))
				valid = false
			}
		}
		if dialer != nil && dialer.conn == sdk.ConnNone && len(p.Handshakes) > 0 {
			d.attrError(a, "Dialer takes no handshakes", fmt.Sprintf("dialer.%s (plugin %q) makes no connection for a handshake to use: "+
				"its phase is the whole probe. Remove the handshakes from this pipeline, or use a dialer that connects, such as dial-tcp.", dialer.name, dialer.plugin))
			valid = false
		}
	}
	p.AddressPolicy = engine.AddressFirst
	if a, ok := content.Attributes["address_policy"]; ok && !d.addressPolicy(a, inst.ctx, p) {
		valid = false
	} else if ok && dialer != nil && dialer.conn != sdk.ConnStream && p.AddressPolicy == engine.AddressHappyEyeballs {
		d.attrError(a, "No race without sockets", fmt.Sprintf("dialer.%s (plugin %q) makes no socket connection (%s), so there is none to race: "+
			"address_policy \"happy-eyeballs\" needs a dialer that connects a socket. Use \"first\" or \"all\".", dialer.name, dialer.plugin, dialer.conn))
		valid = false
	}
	if !valid {
		return nil
	}
	return p
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
func (d *decoder) addressPolicy(a *hcl.Attribute, ctx *hcl.EvalContext, p *engine.Pipeline) bool {
	v, ok := d.eval(a, ctx, cty.String)
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

// refList resolves a list of references such as [resolver.a, resolver.b],
// in ctx. An entry that does not resolve is nil (its diagnostic recorded).
func (d *decoder) refList(a *hcl.Attribute, k sdk.Kind, ctx *hcl.EvalContext) []*component {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference list",
			Detail:  fmt.Sprintf("The attribute %q must be a list of references such as [%s.NAME].", a.Name, k),
			Subject: a.Expr.Range().Ptr()})
		return []*component{nil}
	}
	out := make([]*component, 0, len(exprs))
	for _, e := range exprs {
		c, _ := resolve(d, d.components[k], e, string(k), ctx)
		out = append(out, c)
	}
	return out
}

package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// coreSchema returns the attributes the core decodes itself in a component
// block of kind k; the rest belongs to the plugin.
func coreSchema(k sdk.Kind) *hcl.BodySchema {
	s := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "plugin", Required: true}, {Name: "for_each"}}}
	if k == sdk.KindResolver {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: "match"})
	}
	return s
}

// componentBlocks decodes the resolver, dialer or handshake blocks, each
// instance of a block with for_each a component of its own.
func (d *decoder) componentBlocks(k sdk.Kind, blocks []*hcl.Block) map[string]*block[*component] {
	out := map[string]*block[*component]{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := out[name]; dup {
			d.diags = append(d.diags, duplicate(string(k), name, b.DefRange, prev.decl))
			continue
		}
		content, remain, diags := b.Body.PartialContent(coreSchema(k))
		d.diags = append(d.diags, diags...)
		x, ok := d.expand(b, content.Attributes["for_each"])
		blk := newBlock[*component](b, x, ok)
		out[name] = blk
		if !ok {
			continue
		}
		for inst := range x.instances(d.ctx) {
			blk.instances[inst.key] = d.component(k, b, content, remain, inst)
		}
	}
	return out
}

// component decodes one instance of a component block, whose core
// attributes are content and plugin attributes remain; nil after an error.
func (d *decoder) component(k sdk.Kind, b *hcl.Block, content *hcl.BodyContent, remain hcl.Body, inst instance) *component {
	pa, ok := content.Attributes["plugin"]
	if !ok {
		return nil
	}
	pv, ok := d.eval(pa, inst.ctx, cty.String)
	if !ok {
		return nil
	}
	c := &component{kind: k, name: inst.name, plugin: pv.AsString()}
	p, why, ok := d.plugin(c.plugin)
	switch {
	case !ok:
		return nil // its plugin block failed to load, and said so
	case p == nil:
		d.attrError(pa, "Unknown plugin", strings.TrimSpace(fmt.Sprintf("There is no plugin named %q. Available plugins: %s.%s %s",
			c.plugin, joinNames(d.pluginNames()), didYouMean(c.plugin, d.pluginNames()), why)))
		return nil
	case !p.Serves(k):
		d.attrError(pa, fmt.Sprintf("Plugin is not a %s", k),
			fmt.Sprintf("The plugin %q serves no %s component; it serves: %v.", c.plugin, k, p.Kinds()))
		return nil
	}
	if ma, ok := content.Attributes["match"]; ok {
		if v, ok := d.eval(ma, inst.ctx, cty.List(cty.String)); ok {
			for _, e := range v.AsValueSlice() {
				c.match = append(c.match, e.AsString())
			}
			if _, err := engine.NewRoute(engine.Stage[sdk.Resolver]{}, c.match); err != nil {
				d.attrError(ma, "Invalid match", fmt.Sprintf("%s. A match entry is a CIDR prefix (\"100.64.0.0/10\") or a name glob (\"*.ts.net\").", err))
			}
		}
	}

	schema := p.Schema(k)
	spec := specFor(schema)
	if d.budget.exhausted() {
		return nil
	}
	cfg, diags := hcldec.Decode(remain, spec, inst.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !d.chargeValue(cfg, b.DefRange, fmt.Sprintf("the configuration of %s", c.name)) {
		return nil
	}
	if cfg = d.typed(cfg, schema, remain); cfg == cty.NilVal {
		return nil
	}
	// Plugins get plain values; sensitive strings are in File.Options.Secrets,
	// also those derived from a sensitive variable (an Authorization header
	// made with base64encode, which holds none of the variable's text).
	cfg, marked := cfg.UnmarkDeepWithPaths()
	marks := cty.ValueMarks{}
	for _, pm := range marked {
		for m := range pm.Marks {
			marks[m] = struct{}{}
		}
		if _, ok := pm.Marks[sensitiveMark]; ok {
			if v, err := pm.Path.Apply(cfg); err == nil {
				d.addSecrets(v)
			}
		}
	}
	impl, err := p.New(k, cfg)
	if err != nil {
		diag := &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("Invalid %s configuration", k),
			Detail:  fmt.Sprintf("The plugin %q refused the configuration of %s %q: %s.", c.plugin, k, c.name, err),
			Subject: b.DefRange.Ptr()}
		if ae, ok := sdk.AsAttrError(err); ok {
			diag.Summary, diag.Detail = ae.Summary, ae.Detail
			if rng := hcldec.SourceRange(remain, &hcldec.AttrSpec{Name: ae.Attr, Type: cty.DynamicPseudoType}); rng.Filename != "" {
				diag.Subject = rng.Ptr()
			}
		}
		d.diags = append(d.diags, diag)
		return nil
	}
	d.file.components = append(d.file.components, impl)
	c.impl = impl
	c.sensitive = marks.Has(sensitiveMark)
	return c
}

// specFor builds the hcldec spec of a plugin schema, defaults included. It
// takes each attribute as it is, for typed to convert.
func specFor(s *sdk.Schema) hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec{}
	for _, a := range s.Attributes {
		var as hcldec.Spec = &hcldec.AttrSpec{Name: a.Name, Type: cty.DynamicPseudoType, Required: a.Required}
		if a.Default != cty.NilVal {
			as = &hcldec.DefaultSpec{Primary: as, Default: &hcldec.LiteralSpec{Value: a.Default}}
		}
		spec[a.Name] = as
	}
	return spec
}

// typed converts each attribute of cfg, decoded from body, to its type in
// schema, as budget.convert does; cty.NilVal when one does not convert,
// the errors recorded.
func (d *decoder) typed(cfg cty.Value, schema *sdk.Schema, body hcl.Body) cty.Value {
	attrs := make(map[string]cty.Value, len(schema.Attributes))
	ok := true
	for _, a := range schema.Attributes {
		v, err := d.budget.convert(cfg.GetAttr(a.Name), a.Type, fmt.Sprintf("the value of %s", a.Name))
		attrs[a.Name] = v
		if err == nil {
			continue
		}
		ok = false
		rng := hcldec.SourceRange(body, &hcldec.AttrSpec{Name: a.Name, Type: cty.DynamicPseudoType})
		if le := (*limitError)(nil); errors.As(err, &le) {
			if diag := d.limitDiag(le, rng); diag != nil {
				d.diags = append(d.diags, diag)
			}
			continue
		}
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
			Detail: fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err), Subject: rng.Ptr()})
	}
	if !ok {
		return cty.NilVal
	}
	return cty.ObjectVal(attrs)
}

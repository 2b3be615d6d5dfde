package config

import (
	"fmt"
	"iter"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/engine"
	"github.com/zclconf/go-cty/cty"
)

var targetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "host", Required: true},
		{Name: "port", Required: true},
		{Name: "pipeline", Required: true},
		{Name: "attempts"},
		{Name: "timeout"},
	},
}

// targets decodes the target blocks, expanding for_each.
func (d *decoder) targets(blocks []*hcl.Block) {
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		content, diags := b.Body.Content(targetSchema)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		var pipeline *engine.Pipeline
		pa := content.Attributes["pipeline"]
		if name, ok := d.refName(pa.Expr, "pipeline"); ok {
			pipeline = d.file.Pipelines[name]
			if pipeline == nil && !d.declared("pipeline", name) {
				d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
					Summary: "Reference to undeclared pipeline",
					Detail:  fmt.Sprintf("There is no pipeline block named %q in this file.%s", name, didYouMean(name, d.file.PipelineNames())),
					Subject: pa.Expr.Range().Ptr()})
			}
		}
		for inst := range d.instances(b, content.Attributes["for_each"]) {
			t := &engine.Target{Name: inst.name, Pipeline: pipeline}
			ok := pipeline != nil
			if v, good := d.eval(content.Attributes["host"], inst.ctx, cty.String); good && v.AsString() != "" {
				t.Host = v.AsString()
				if err := engine.CheckHost(t.Host); err != nil {
					d.attrError(content.Attributes["host"], "Invalid host", fmt.Sprintf("The %s.", err))
					t.Host, ok = "", false
				}
			} else {
				if good {
					d.attrError(content.Attributes["host"], "Invalid host", "The host must not be empty.")
				}
				ok = false
			}
			if pipeline != nil && t.Host != "" && pipeline.Route(t.Host) == nil {
				d.noRoute(content.Attributes["host"], t.Host, pipeline)
				ok = false
			}
			if p, good := d.port(content.Attributes["port"], inst.ctx); good {
				t.Port = p
			} else {
				ok = false
			}
			if a := content.Attributes["attempts"]; a != nil {
				t.Attempts = d.positiveInt(a, inst.ctx)
			}
			if a := content.Attributes["timeout"]; a != nil {
				t.Timeout = d.duration(a, inst.ctx, false)
			}
			if prev, dup := seen[t.Name]; dup {
				d.diags = append(d.diags, duplicate("target", t.Name, b.DefRange, prev))
				continue
			}
			seen[t.Name] = b.DefRange
			if ok {
				d.file.Targets = append(d.file.Targets, t)
			}
		}
	}
}

// noRoute reports a host that no resolver of pipeline p matches: each has a
// match list, and none fits.
func (d *decoder) noRoute(a *hcl.Attribute, host string, p *engine.Pipeline) {
	routes := make([]string, len(p.Resolvers))
	for i := range p.Resolvers {
		r := &p.Resolvers[i]
		routes[i] = fmt.Sprintf("resolver.%s (match = [%s])", r.Name, quoteJoin(r.Match()))
	}
	d.attrError(a, "No resolver matches the host", fmt.Sprintf(
		"The host %q matches none of the resolvers of pipeline %q: %s. Add a resolver without match, which answers "+
			"every host, to the pipeline's resolvers, or a match entry that fits this host.",
		host, p.Name, strings.Join(routes, ", ")))
}

// quoteJoin quotes each string and joins them with ", ".
func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// instance is one target of a block: the block itself, or one for_each
// element with each.key and each.value in its context.
type instance struct {
	name string
	ctx  *hcl.EvalContext
}

// instances expands a target block's for_each, Terraform-style: a map or
// object gives one instance per key; a list, tuple or set of strings one
// per string (each.key = each.value); another list one per index. Each
// instance's context is made as it is yielded, so that a for_each of many
// elements does not hold every element's context at once (about 1 KB each).
func (d *decoder) instances(b *hcl.Block, forEach *hcl.Attribute) iter.Seq[instance] {
	return func(yield func(instance) bool) {
		name := b.Labels[0]
		if forEach == nil {
			yield(instance{name: name, ctx: d.ctx})
			return
		}
		val, diags := forEach.Expr.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		val, _ = val.UnmarkDeep() // sensitive strings are in File.Options.Secrets
		if diags.HasErrors() || !val.IsWhollyKnown() {
			return
		}
		ty := val.Type()
		if val.IsNull() || !(ty.IsMapType() || ty.IsObjectType() || ty.IsListType() || ty.IsTupleType() || ty.IsSetType()) {
			d.attrError(forEach, "Invalid for_each argument",
				fmt.Sprintf("The for_each argument must be a map, an object, a list or a set, not %s.", ty.FriendlyName()))
			return
		}
		type kv struct {
			key string
			val cty.Value
		}
		var elems []kv
		for it := val.ElementIterator(); it.Next(); {
			k, v := it.Element()
			switch {
			case ty.IsMapType() || ty.IsObjectType():
				elems = append(elems, kv{k.AsString(), v})
			case !v.IsNull() && v.Type() == cty.String:
				elems = append(elems, kv{v.AsString(), v})
			default:
				idx, _ := k.AsBigFloat().Int64()
				elems = append(elems, kv{fmt.Sprint(idx), v})
			}
		}
		if ty.IsMapType() || ty.IsObjectType() {
			sort.Slice(elems, func(i, j int) bool { return elems[i].key < elems[j].key })
		}
		for _, e := range elems {
			ctx := d.ctx.NewChild()
			ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{
				"key": cty.StringVal(e.key), "value": e.val,
			})}
			if !yield(instance{name: fmt.Sprintf("%s[%s]", name, e.key), ctx: ctx}) {
				return
			}
		}
	}
}

// port evaluates a port number, 1 to 65535.
func (d *decoder) port(a *hcl.Attribute, ctx *hcl.EvalContext) (uint16, bool) {
	v, ok := d.eval(a, ctx, cty.Number)
	if !ok {
		return 0, false
	}
	i, acc := v.AsBigFloat().Int64()
	if acc != big.Exact || i < 1 || i > 65535 {
		d.attrError(a, "Invalid port", fmt.Sprintf("A port is a whole number from 1 to 65535, got %s.", v.AsBigFloat().Text('g', -1)))
		return 0, false
	}
	return uint16(i), true
}

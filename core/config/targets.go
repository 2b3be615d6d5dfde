package config

import (
	"fmt"
	"math/big"
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

// targets decodes the target blocks, one target for each instance of a
// block with for_each, and the blocks whose targets are in a file
// (targetsFile).
func (d *decoder) targets(blocks []*hcl.Block) {
	seen := map[string]hcl.Range{}
	// The names of the blocks: a targets file's targets are named after
	// its block, which no other target block may share.
	blockNames := map[string][]hcl.Range{}
	for _, b := range blocks {
		blockNames[b.Labels[0]] = append(blockNames[b.Labels[0]], b.DefRange)
	}
	for _, b := range blocks {
		if file, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "targets_file"}}}); file.Attributes["targets_file"] != nil {
			if decls := blockNames[b.Labels[0]]; len(decls) > 1 {
				prev := decls[0]
				if prev == b.DefRange {
					prev = decls[1]
				}
				d.diags = append(d.diags, duplicate("target", b.Labels[0], b.DefRange, prev))
				continue
			}
			d.targetsFile(b, seen)
			continue
		}
		content, diags := b.Body.Content(targetSchema)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		x, good := d.expand(b, content.Attributes["for_each"])
		if !good {
			continue
		}
		for inst := range x.instances(d.ctx) {
			pipeline, ok := resolve(d, d.pipelines, content.Attributes["pipeline"].Expr, "pipeline", inst.ctx)
			t := &engine.Target{Name: inst.name, Pipeline: pipeline}
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

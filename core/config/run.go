package config

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/engine"
	"github.com/zclconf/go-cty/cty"
)

var runSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "mode"},
		{Name: "concurrency"},
		{Name: "attempts"},
		{Name: "interval"},
		{Name: "timeout"},
	},
}

// run decodes the run block, of which there is at most one.
func (d *decoder) run(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			d.diags = append(d.diags, duplicate("run block", "run", b.DefRange, blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(runSchema)
		d.diags = append(d.diags, diags...)
		o := &d.file.Options
		if a, ok := content.Attributes["mode"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.String); ok {
				switch m := engine.Mode(v.AsString()); m {
				case engine.Parallel, engine.Sequential:
					o.Mode = m
				default:
					d.attrError(a, "Invalid run mode",
						fmt.Sprintf("The mode must be %q or %q, got %q.%s", engine.Parallel, engine.Sequential, v.AsString(),
							didYouMean(v.AsString(), []string{string(engine.Parallel), string(engine.Sequential)})))
				}
			}
		}
		if a, ok := content.Attributes["concurrency"]; ok {
			o.Concurrency = d.positiveInt(a, d.ctx)
		}
		if a, ok := content.Attributes["attempts"]; ok {
			o.Attempts = d.positiveInt(a, d.ctx)
		}
		if a, ok := content.Attributes["interval"]; ok {
			o.Interval = d.duration(a, d.ctx, true)
		}
		if a, ok := content.Attributes["timeout"]; ok {
			o.Timeout = d.duration(a, d.ctx, false)
		}
	}
}

// positiveInt evaluates a whole number >= 1; 0 after an error.
func (d *decoder) positiveInt(a *hcl.Attribute, ctx *hcl.EvalContext) int {
	v, ok := d.eval(a, ctx, cty.Number)
	if !ok {
		return 0
	}
	i, acc := v.AsBigFloat().Int64()
	if acc != big.Exact || i < 1 || i > 1<<31 {
		d.attrError(a, "Invalid number", fmt.Sprintf("The attribute %q must be a whole number of at least 1.", a.Name))
		return 0
	}
	return int(i)
}

// duration evaluates a Go duration string ("200ms"); zero only when
// allowZero.
func (d *decoder) duration(a *hcl.Attribute, ctx *hcl.EvalContext, allowZero bool) time.Duration {
	v, ok := d.eval(a, ctx, cty.String)
	if !ok {
		return 0
	}
	dur, err := time.ParseDuration(v.AsString())
	if err != nil || dur < 0 || (dur == 0 && !allowZero) {
		d.attrError(a, "Invalid duration",
			fmt.Sprintf("The attribute %q must be a positive duration such as \"5s\" or \"200ms\", got %q.", a.Name, v.AsString()))
		return 0
	}
	return dur
}

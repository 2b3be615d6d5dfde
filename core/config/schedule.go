package config

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/history"
)

// Schedule is a file's schedule block: how often `probe serve` probes every
// target of the file on its own, between scrapes.
type Schedule struct {
	// Every is the time from the start of one round of all targets to the
	// start of the next (engine.Schedule); zero means no scheduled probing.
	Every time.Duration
	// Retain is how long the status page's history keeps each target's
	// attempts (core/history); zero for its default, 24h.
	Retain time.Duration
	// RetainAttempts is how long, of Retain, the history keeps every
	// attempt one by one, the older ones per bucket of time; zero for its
	// default, an hour.
	RetainAttempts time.Duration
	// Histograms is the layout of /metrics' duration histograms, one of
	// HistogramLayouts (core/report's Layout); "" for the default, native.
	Histograms string
}

// HistogramLayouts are the values of the schedule's histograms attribute.
var HistogramLayouts = []string{"native", "classic"}

var scheduleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "every", Required: true},
		{Name: "retain"},
		{Name: "retain_attempts"},
		{Name: "histograms"},
	},
}

// schedule decodes the schedule block, of which there is at most one.
func (d *decoder) schedule(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			d.diags = append(d.diags, duplicate("schedule block", "schedule", b.DefRange, blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(scheduleSchema)
		d.diags = append(d.diags, diags...)
		if a, ok := content.Attributes["every"]; ok {
			d.file.Schedule.Every = d.duration(a, d.ctx, false)
		}
		if a, ok := content.Attributes["retain"]; ok {
			d.file.Schedule.Retain = d.duration(a, d.ctx, false)
		}
		if a, ok := content.Attributes["retain_attempts"]; ok {
			sc := &d.file.Schedule
			retain := cmp.Or(sc.Retain, history.DefaultRetain)
			if sc.RetainAttempts = d.duration(a, d.ctx, false); sc.RetainAttempts > retain {
				d.attrError(a, "Invalid retain_attempts", fmt.Sprintf("retain_attempts (%v) is longer than retain (%v): it is the part of retain whose attempts are kept one by one.",
					sc.RetainAttempts, retain))
			}
		}
		if a, ok := content.Attributes["histograms"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.String); ok {
				if d.file.Schedule.Histograms = v.AsString(); !slices.Contains(HistogramLayouts, v.AsString()) {
					d.attrError(a, "Invalid histogram layout", fmt.Sprintf("histograms must be one of %s; got %q.%s",
						quoteJoin(HistogramLayouts), v.AsString(), didYouMean(v.AsString(), HistogramLayouts)))
				}
			}
		}
	}
}

package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Schedule is a file's schedule block: how often `probe serve` probes every
// target of the file on its own, between scrapes.
type Schedule struct {
	// Every is the time from the start of one round of all targets to the
	// start of the next; a round that takes longer is followed at once.
	// Zero means no scheduled probing.
	Every time.Duration
	// Retain is how long the status page's history keeps each target's
	// attempts (core/history); zero for its default, 24h.
	Retain time.Duration
}

var scheduleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "every", Required: true},
		{Name: "retain"},
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
	}
}

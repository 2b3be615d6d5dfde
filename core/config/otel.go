package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// OTel is a file's otel block: where `probe run` and `probe serve` export
// every attempt as an OpenTelemetry trace, and the metrics, over OTLP.
type OTel struct {
	// Set is true when the file has an otel block: export is on.
	Set bool
	// Endpoint is the collector's base URL (http://host:4318) or
	// host:port; empty: OTEL_EXPORTER_OTLP_ENDPOINT and the SDK's default.
	Endpoint string
	// Headers go with every export (an API key: a sensitive variable's).
	Headers map[string]string
	// Insecure sends without TLS to an endpoint given as host:port.
	Insecure bool
}

var otelSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "endpoint"},
		{Name: "headers"},
		{Name: "insecure"},
	},
}

// otel decodes the otel block, of which there is at most one.
func (d *decoder) otel(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			d.diags = append(d.diags, duplicate("otel block", "otel", b.DefRange, blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(otelSchema)
		d.diags = append(d.diags, diags...)
		o := &d.file.OTel
		o.Set = true
		if a, ok := content.Attributes["endpoint"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.String); ok && !v.IsNull() {
				o.Endpoint = v.AsString()
			}
		}
		if a, ok := content.Attributes["headers"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.Map(cty.String)); ok && !v.IsNull() {
				o.Headers = map[string]string{}
				for k, h := range v.AsValueMap() {
					if !h.IsNull() {
						o.Headers[k] = h.AsString()
					}
				}
			}
		}
		if a, ok := content.Attributes["insecure"]; ok {
			if v, ok := d.eval(a, d.ctx, cty.Bool); ok && !v.IsNull() {
				o.Insecure = v.True()
			}
		}
	}
}

package conformance

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

func TestDescribeProblems(t *testing.T) {
	hs := func(cty.Value) (sdk.Handshaker, error) { return nil, context.Canceled }
	info := sdk.Info{Name: "greeter", Version: "1.0.0", Description: "Greets."}
	tests := []struct {
		name   string
		plugin sdk.Plugin
		want   []string
	}{
		{"sound", sdk.Plugin{Info: info, NewHandshaker: hs,
			HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{{Name: "line", Type: cty.String, Description: "The line."}}}}, nil},
		{"bad info", sdk.Plugin{Info: sdk.Info{Name: "Greeter_2"}}, []string{
			`name "Greeter_2": want lower-case letters, digits and hyphens, as a pipeline names it`,
			"no version",
			"no description (one line for `probe plugins`)",
			"serves no component: no resolver, dialer nor handshake schema",
		}},
		{"bad attributes", sdk.Plugin{Info: info, NewHandshaker: hs, HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "Line", Type: cty.String, Description: "The line."},
			{Name: "timeout", Type: cty.String},
			{Name: "port", Type: cty.Number, Description: "The port.", Required: true, Default: cty.NumberIntVal(7)},
			{Name: "port", Type: cty.Number, Description: "The port again."},
		}}}, []string{
			`handshake attribute "Line": want a lower-case HCL name`,
			`handshake attribute "timeout" has no description (for ` + "`probe plugins show`)",
			`handshake attribute "port" is required and has a default`,
			`handshake attribute "port" twice`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, describeProblems(&tt.plugin)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

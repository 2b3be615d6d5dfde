// Command envplugin is a test plugin binary for core/pluginhost: its
// handshake "env" succeeds at once and reports the process's environment in
// the attribute "environ".
package main

import (
	"context"
	"os"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sdk/serve"
	"github.com/zclconf/go-cty/cty"
)

func main() {
	serve.Serve(&sdk.Plugin{
		Info:          sdk.Info{Name: "env", Version: "0.0.1", Description: "Reports its environment."},
		NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return reporter{}, nil },
	})
}

type reporter struct{}

func (reporter) Handshake(context.Context, *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, map[string]any{"environ": os.Environ()})}}, nil
}

var _ sdk.Handshaker = reporter{}

// Command hangplugin is a test plugin binary for core/pluginhost: its
// handshake "hang" never answers when the target's host is hang.test (it
// ignores its context, as a wedged plugin would) and succeeds at once for
// any other host.
package main

import (
	"context"
	"os"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

func main() {
	sdk.Serve(&sdk.Plugin{
		Info:          sdk.Info{Name: "hang", Version: "0.0.1", Description: "Hangs on hang.test."},
		NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return hanger{}, nil },
	})
}

type hanger struct{}

func (hanger) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "hang.test" {
		select {}
	}
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, map[string]any{"pid": os.Getpid()})}}, nil
}

var _ sdk.Handshaker = hanger{}

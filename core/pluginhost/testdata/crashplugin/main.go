// Command crashplugin is a test plugin binary for core/pluginhost: its
// handshake "crash" exits the process when the target's host is crash.test
// and succeeds at once for any other host.
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
		Info:          sdk.Info{Name: "crash", Version: "0.0.1", Description: "Dies on crash.test."},
		NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return crasher{}, nil },
	})
}

type crasher struct{}

func (crasher) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "crash.test" {
		os.Exit(2)
	}
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, map[string]any{"pid": os.Getpid()})}}, nil
}

var _ sdk.Handshaker = crasher{}

// Command hangplugin is a test plugin binary for core/pluginhost: its
// handshake "hang" never answers when the target's host is hang.test (it
// ignores its context, as a wedged plugin would) and succeeds at once for
// any other host. It serves the resolver "static" and dial-tcp too
// (testplugin).
package main

import (
	"context"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
)

func main() { testplugin.Serve("hang", "Hangs on hang.test.", hanger{}) }

type hanger struct{}

func (hanger) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "hang.test" {
		select {}
	}
	return testplugin.Done(span), nil
}

var _ sdk.Handshaker = hanger{}

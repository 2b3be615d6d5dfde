// Command crashplugin is a test plugin binary for core/pluginhost: its
// handshake "crash" exits the process when the target's host is crash.test
// and succeeds at once for any other host. It serves the resolver "static"
// and dial-tcp too (testplugin).
package main

import (
	"context"
	"os"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
)

func main() { testplugin.Serve("crash", "Dies on crash.test.", crasher{}) }

type crasher struct{}

func (crasher) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "crash.test" {
		os.Exit(2)
	}
	return testplugin.Done(span), nil
}

var _ sdk.Handshaker = crasher{}

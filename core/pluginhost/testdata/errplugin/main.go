// Command errplugin is a test plugin binary for core/pluginhost whose
// components return Go errors instead of results: its handshake "error" on
// host error.test, and, as every test binary's (testplugin), the resolver
// "static" on resolve-error.test and dial-tcp on dial-error.test. It
// succeeds for any other host.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
)

func main() { testplugin.Serve("error", "Returns a Go error on error.test.", failer{}) }

type failer struct{}

func (failer) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "error.test" {
		return nil, fmt.Errorf("the handshake's own error for %s", req.Host)
	}
	return testplugin.Done(span), nil
}

var _ sdk.Handshaker = failer{}

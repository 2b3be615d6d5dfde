// Command errplugin is a test plugin binary for core/pluginhost whose
// components return Go errors instead of results: its handshake "error" on
// host error.test, and, as every test binary's (testplugin), the resolver
// "static" on resolve-error.test and dial-tcp on dial-error.test. It
// succeeds for any other host. Its plugin "misread" has a handshake whose
// constructor reads an attribute its schema lacks.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

func main() {
	testplugin.Serve("error", "Returns a Go error on error.test.", failer{}, &sdk.Plugin{
		Info:            sdk.Info{Name: "misread", Version: "0.0.1", Description: "Reads an attribute its schema lacks."},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{{Name: "name", Type: cty.String}}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) {
			_ = sdk.String(cfg, "nmae")
			return failer{}, nil
		},
	})
}

type failer struct{}

func (failer) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("", time.Time{})
	if req.Host == "error.test" {
		return nil, fmt.Errorf("the handshake's own error for %s", req.Host)
	}
	return testplugin.Done(span), nil
}

var _ sdk.Handshaker = failer{}

// Package testplugin serves the misbehaving handshakes of core/pluginhost's
// test binaries beside a resolver and a dialer, so that a pipeline can run
// every component in the test binary's process, as one Sequences request.
package testplugin

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/sdk/serve"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// Serve serves the handshake plugin name, whose handshake is hs, the
// resolver "static" (127.0.0.1 for every host), dial-tcp and the plugins
// extra. The resolver returns a Go error for the host resolve-error.test,
// the dialer for dial-error.test.
func Serve(name, description string, hs sdk.Handshaker, extra ...*sdk.Plugin) {
	dialer := builtins.Plugins()["dial-tcp"]
	newDialer := dialer.NewDialer
	dialer.NewDialer = func(cfg cty.Value) (sdk.Dialer, error) {
		d, err := newDialer(cfg)
		return failing{d}, err
	}
	serve.Serve(append([]*sdk.Plugin{
		{
			Info:          sdk.Info{Name: name, Version: "0.0.1", Description: description},
			NewHandshaker: func(cty.Value) (sdk.Handshaker, error) { return hs, nil },
		},
		{
			Info:        sdk.Info{Name: "static", Version: "0.0.1", Description: "Answers 127.0.0.1."},
			NewResolver: func(cty.Value) (sdk.Resolver, error) { return static{}, nil },
		},
		dialer,
	}, extra...)...)
}

// failing is a dialer that returns a Go error for the host dial-error.test.
type failing struct{ sdk.Dialer }

func (f failing) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	if req.Host == "dial-error.test" {
		return nil, errors.New("the dialer's own error for dial-error.test")
	}
	return f.Dialer.Dial(ctx, req)
}

// Done is a handshake's answer: one phase that succeeded, with the process
// and the goroutine that ran it.
func Done(span sdk.Span) *sdk.HandshakeResponse {
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{span.End(true, map[string]any{"pid": os.Getpid(), "goroutine": goroutine()})}}
}

// goroutine is the calling goroutine's number, from its stack's header
// ("goroutine 7 [running]:").
func goroutine() int {
	var buf [32]byte
	f := strings.Fields(string(buf[:runtime.Stack(buf[:], false)]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

type static struct{}

func (static) Resolve(_ context.Context, req *sdk.ResolveRequest) (*sdk.ResolveResponse, error) {
	if req.Host == "resolve-error.test" {
		return nil, errors.New("the resolver's own error for resolve-error.test")
	}
	span := sdk.StartSpan(sdk.PhaseResolve, time.Time{})
	return &sdk.ResolveResponse{Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Phases: []sdk.Phase{span.End(true, nil)}}, nil
}

// Command liarplugin is a test plugin binary for core/pluginhost whose
// handshake "liar" reports what no measurement can: on host nan.test
// attributes of NaN and ±Inf, on negative.test a phase of negative
// duration, on twice.test two phases of one name. It succeeds for any other
// host. The engine holds what it reports to its rules.
package main

import (
	"context"
	"math"
	"time"

	"github.com/probe-dev/probe/core/pluginhost/testdata/testplugin"
	"github.com/probe-dev/probe/core/sdk"
)

func main() { testplugin.Serve("liar", "Reports impossible phases.", liar{}) }

type liar struct{}

func (liar) Handshake(_ context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	span := sdk.StartSpan("liar", time.Time{})
	p := span.End(true, nil)
	phases := []sdk.Phase{p}
	switch req.Host {
	case "nan.test":
		p.Attrs = map[string]any{"nan": math.NaN(), "inf": math.Inf(1), "list": []any{math.Inf(-1), 1.5}}
		phases[0] = p
	case "negative.test":
		phases[0].Duration = -time.Hour
	case "twice.test":
		second := p
		second.Start += p.Duration
		phases = append(phases, second)
	default:
		return testplugin.Done(span), nil
	}
	return &sdk.HandshakeResponse{Phases: phases}, nil
}

var _ sdk.Handshaker = liar{}

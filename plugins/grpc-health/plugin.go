// Package grpchealth is probe's built-in gRPC health check, plugin
// "grpc-health": it calls grpc.health.v1.Health/Check over the connection
// the pipeline established (plain TCP, or the TLS connection of a tls
// handshake offering h2), with grpc-go's own client, measures the exchange
// as the grpc phase and expects the service to be SERVING.
package grpchealth

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "grpc-health"

// Phase is the name of the phase the handshake measures.
const Phase = "grpc"

// The failure classes of the grpc phase.
const (
	ClassNotServing sdk.Class = "grpc.not_serving" // the server answered with a status other than SERVING
	ClassStatus     sdk.Class = "grpc.status"      // the call ended with a gRPC status other than OK (no health service, unknown service)
	ClassTimeout    sdk.Class = "grpc.timeout"     // no answer in time
	ClassProtocol   sdk.Class = "grpc.protocol"    // the server does not speak HTTP/2 and gRPC, or closed the connection
)

// Plugin returns the grpc-health plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "gRPC health check (grpc.health.v1.Health/Check) over the pipeline's connection; SERVING expected.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "service", Type: cty.String, Default: cty.StringVal(""),
				Description: "Service name to ask about; \"\" (the default) asks about the server as a whole."},
			{Name: "authority", Type: cty.String,
				Description: "The :authority of the call; unset means the target's host and port."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the exchange alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

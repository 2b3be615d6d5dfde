// Package pluginrpc is the plugin protocol, probe.v1 over gRPC through
// hashicorp/go-plugin, both sides of it: the server a plugin binary runs
// over its sdk components (Serve, behind serve.Serve), the client through
// which probe calls them as sdk components again (Client and the plugins
// it returns), and the one converter between the sdk's types and
// probe.v1's. It also has what the two sides agree on before any call: the
// go-plugin handshake and the socket-passing channel's descriptor.
//
// The sdk is the contract a plugin author reads, and knows nothing of this
// package: a change of transport changes this package and
// core/pluginhost, which runs the plugin processes, not the sdk.
// core/engine's optional interfaces (engine.Sequencer,
// engine.HoldingDialer, engine.ClosingHandshaker) are how the engine tells
// the components of this client what runs around them.
package pluginrpc

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"github.com/probe-dev/probe/core/proto/probev1"
	"google.golang.org/grpc"
)

// ProtocolVersion is the major version of the plugin protocol: the
// probe.v1 gRPC service. A plugin binary built for another major version is
// refused before any RPC.
const ProtocolVersion = 1

// Handshake is the go-plugin handshake a plugin binary and probe exchange
// when the binary starts. The magic cookie only keeps a plugin binary from
// being run by hand by mistake; it is not a security measure (sha256 pins
// are).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PROBE_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "5b0c3b5e-probe-plugin-v1",
}

// FDPassFD is the file descriptor on which a plugin process finds its end of
// the socket-passing channel (the first of exec.Cmd.ExtraFiles).
const FDPassFD = 3

// pluginSetKey is the name under which both sides register the probe
// protocol in go-plugin's plugin set.
const pluginSetKey = "probe"

// PluginSet is go-plugin's plugin set on probe's side (ClientConfig.Plugins).
func PluginSet() plugin.PluginSet {
	return pluginSet(nil)
}

// pluginSet registers the probe.v1 service, served by srv on the plugin's
// side (nil on probe's).
func pluginSet(srv *server) plugin.PluginSet {
	return plugin.PluginSet{pluginSetKey: &grpcPlugin{srv: srv}}
}

// grpcPlugin is the probe.v1 service as go-plugin registers it, on both
// sides.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server // nil on probe's side, which serves nothing
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.srv == nil {
		return errors.New("probe's side of the plugin protocol serves nothing")
	}
	probev1.RegisterPluginServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return probev1.NewPluginClient(c), nil
}

package sdk

import "github.com/hashicorp/go-plugin"

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

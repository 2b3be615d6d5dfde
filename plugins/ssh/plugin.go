// Package sshhandshake is probe's built-in SSH handshake, plugin "ssh": over
// the connection the dialer made it exchanges versions with the server and
// runs the key exchange (golang.org/x/crypto/ssh) until the server has
// proved its host key, measures that as the ssh phase, reports the server's
// version, the negotiated algorithms and the host key's type and SHA256
// fingerprint, checks the fingerprint against an optional pin, and stops
// there: it never authenticates.
package sshhandshake

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "ssh"

// Phase is the name of the phase the handshake measures.
const Phase = "ssh"

// The failure classes of the ssh phase.
const (
	ClassHostKeyMismatch sdk.Class = "ssh.host_key_mismatch" // the host key is not the pinned one
	ClassTimeout         sdk.Class = "ssh.timeout"           // no host key in time
	ClassProtocol        sdk.Class = "ssh.protocol"          // the peer is not an SSH server, closed, or shares no algorithm
)

// Plugin returns the ssh plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "SSH version exchange and key exchange with the host key's SHA256 fingerprint and an optional pin; no authentication.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "host_key_fingerprint", Type: cty.String,
				Description: "SHA256 fingerprint the host key must have, as ssh-keygen -l prints it (\"SHA256:...\"); unset accepts any key and reports it."},
			{Name: "host_key_algorithms", Type: cty.List(cty.String),
				Description: "Host key algorithms to offer, most preferred first (\"ssh-ed25519\", \"rsa-sha2-512\"); unset offers golang.org/x/crypto/ssh's defaults."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the handshake alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

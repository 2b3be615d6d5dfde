// Package starttls is probe's built-in STARTTLS handshake, plugin
// "starttls": over the connection the dialer made it speaks SMTP, IMAP, POP3
// or PostgreSQL's wire protocol up to the server's go-ahead for TLS, measures
// that as the starttls phase, and leaves the connection to the tls handshake
// that follows, which finds it exactly where a TLS client hello belongs.
package starttls

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "starttls"

// Phase is the name of the phase the handshake measures.
const Phase = "starttls"

// The failure classes of the starttls phase.
const (
	ClassUnsupported sdk.Class = "starttls.unsupported" // the server does not offer the upgrade
	ClassRefused     sdk.Class = "starttls.refused"     // the server answered with an error
	ClassTimeout     sdk.Class = "starttls.timeout"     // no go-ahead in time
	ClassProtocol    sdk.Class = "starttls.protocol"    // the server does not speak the protocol, closed, or sent bytes after its go-ahead
)

// Plugin returns the starttls plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.1.0",
			Description: "Upgrade to TLS in SMTP, IMAP, POP3 or PostgreSQL, for the tls handshake that follows.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "protocol", Type: cty.String, Required: true,
				Description: "The protocol to speak up to the upgrade: \"smtp\", \"imap\", \"pop3\" or \"postgres\"."},
			{Name: "ehlo_name", Type: cty.String,
				Description: "SMTP: the name sent with EHLO; unset sends the address literal of the connection's local address (\"[192.0.2.10]\")."},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the exchange alone (\"2s\"), within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

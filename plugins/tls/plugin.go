// Package tlshandshake is probe's built-in TLS handshake, plugin "tls": it
// runs a TLS client handshake over a connected socket, measures it as the tls
// phase, verifies the server's certificate itself (and, if asked, checks
// its revocation by OCSP or CRL), sends a client certificate when the server
// asks for one, and reports the negotiated parameters and the certificates'
// facts, also when verification fails.
package tlshandshake

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Name is the plugin's name in pipeline files.
const Name = "tls"

// Plugin returns the tls plugin: a Handshaker.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Info: sdk.Info{
			Name:        Name,
			Version:     "0.3.0",
			Description: "TLS handshake with certificate verification, revocation checks, client certificates and certificate facts.",
		},
		HandshakeSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "server_name", Type: cty.String,
				Description: "Name to send as SNI and verify the certificate against; unset means the target's host (an IP literal is verified against its IP SANs and sends no SNI)."},
			{Name: "alpn", Type: cty.List(cty.String),
				Description: "Application protocols to offer, in order of preference (\"h2\", \"http/1.1\"); unset offers none."},
			{Name: "ca_file", Type: cty.String,
				Description: "PEM file of the root certificates to trust; unset means the system's roots."},
			{Name: "insecure_skip_verify", Type: cty.Bool, Default: cty.False,
				Description: "Complete the handshake even when the certificate does not verify; the result is still reported."},
			{Name: "min_version", Type: cty.String,
				Description: "Lowest TLS version to offer: \"1.0\", \"1.1\", \"1.2\" or \"1.3\"; unset means 1.2."},
			{Name: "max_version", Type: cty.String,
				Description: "Highest TLS version to offer: \"1.0\", \"1.1\", \"1.2\" or \"1.3\"; unset means 1.3."},
			{Name: "key_exchanges", Type: cty.List(cty.String),
				Description: "Key exchanges (TLS groups) to offer, most preferred first: \"X25519MLKEM768\", \"SecP256r1MLKEM768\", \"SecP384r1MLKEM1024\", \"X25519\", \"P256\", \"P384\", \"P521\"; unset offers Go's default (today the post-quantum hybrids first, then X25519, P256, P384 and P521)."},
			{Name: "cert_file", Type: cty.String,
				Description: "PEM file of the client certificate (and its chain) to send when the server asks for one (mutual TLS); needs key_file."},
			{Name: "key_file", Type: cty.String,
				Description: "PEM file of the client certificate's private key."},
			{Name: "revocation", Type: cty.String, Default: cty.StringVal("off"),
				Description: `Check that the server's certificate is not revoked: "ocsp" (the stapled response, else the certificate's OCSP responder), "crl" (its CRL distribution point), or "off".`},
			{Name: "timeout", Type: cty.String,
				Description: "Cap on the handshake alone (\"2s\"), its revocation check included, within the attempt's deadline; unset means the attempt's deadline only."},
		}},
		NewHandshaker: func(cfg cty.Value) (sdk.Handshaker, error) { return New(cfg) },
	}
}

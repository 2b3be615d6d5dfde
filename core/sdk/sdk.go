// Package sdk is the contract between probe and its plugins.
//
// A plugin provides up to three kinds of component: a Resolver turns a target
// host into addresses, a Dialer connects to one address, and a Handshaker runs
// a protocol exchange (TLS, HTTP, a banner check) over a connected socket.
// Each component measures its own work as one or more Phases on the monotonic
// clock of the process that does the work, and reports a probe that failed as
// a Failure: data, not a Go error. A Go error returned by a component means
// the probe could not be run at all.
//
// A plugin describes itself with a Plugin value: its Info and, for each kind
// it serves, a config Schema and a constructor that receives the user's
// configuration as a cty value decoded against that schema. Plugins never see
// HCL.
//
// This package is the contract and nothing of the transport: a plugin
// binary's main hands its plugins to core/sdk/serve's Serve, and how probe
// speaks to the process (probe.v1 over go-plugin and gRPC) is
// core/pluginrpc's, which may change without changing this package.
package sdk

import (
	"context"
	"net"
	"net/netip"
)

// Resolver turns a target's host into the addresses to dial.
type Resolver interface {
	Resolve(ctx context.Context, req *ResolveRequest) (*ResolveResponse, error)
}

// Dialer connects to one address.
type Dialer interface {
	Dial(ctx context.Context, req *DialRequest) (*DialResponse, error)
}

// Handshaker runs a protocol exchange over a connection a Dialer (or an earlier
// Handshaker) established.
type Handshaker interface {
	Handshake(ctx context.Context, req *HandshakeRequest) (*HandshakeResponse, error)
}

// Closer is implemented by components that hold resources (sockets, clients)
// to release when a run ends. Close must work after a failed setup.
type Closer interface {
	Close() error
}

// ResolveRequest asks a Resolver for the addresses of Host.
type ResolveRequest struct {
	// Host is the target's host: a DNS name or an IP literal. An IP literal
	// is still passed to the resolver, which may answer it at once or check
	// it (a tailnet resolver checks that the address is a peer).
	Host string
	// Port is the target's port, for resolvers that care (SRV, proxies).
	Port uint16
}

// ResolveResponse is a Resolver's answer.
type ResolveResponse struct {
	// Addresses are the resolved addresses, in the order the resolver
	// prefers them. Empty when Failure is set.
	Addresses []netip.Addr
	// Phases are the phases the resolver measured, normally one named
	// PhaseResolve.
	Phases []Phase
	// Failure is set when the resolution failed.
	Failure *Failure
}

// DialRequest asks a Dialer to connect to Address.
type DialRequest struct {
	// Address is the address and port to connect to.
	Address netip.AddrPort
	// Host is the target's host as the user wrote it, for dialers that
	// route by name.
	Host string
}

// DialResponse is a Dialer's answer.
type DialResponse struct {
	// Conn is the connected socket, nil when Failure is set, and nil too
	// from a dialer whose plugin declares ConnNone or ConnQUIC
	// (Plugin.DialerConn). The caller owns it and closes it.
	Conn net.Conn
	// Handle is the connection of a dialer whose plugin declares ConnQUIC,
	// nil when Failure is set. The caller owns it and closes it.
	Handle *Handle
	// Phases are the phases the dialer measured, normally one named
	// PhaseConnect.
	Phases []Phase
	// Failure is set when the connection failed.
	Failure *Failure
}

// HandshakeRequest asks a Handshaker to run its exchange over Conn.
type HandshakeRequest struct {
	// Conn is the connection to use. The Handshaker must not close it on
	// success; the caller owns it.
	Conn net.Conn
	// Handle is the connection instead of Conn for a Handshaker whose
	// plugin declares a HandshakeConn other than ConnStream (ConnQUIC).
	// The caller owns it.
	Handle *Handle
	// Host is the target's host as the user wrote it (a TLS handshake uses it
	// as the default server name).
	Host string
	// Address is the address Conn is connected to.
	Address netip.AddrPort
}

// HandshakeResponse is a Handshaker's answer.
type HandshakeResponse struct {
	// Conn is the connection the next handshake should use: the request's
	// Conn, or a wrapper around it (a TLS handshake returns the *tls.Conn so
	// that HTTP can run inside it). Nil means "unchanged".
	Conn net.Conn
	// Phases are the phases the handshake measured, normally one named
	// after the protocol ("tls", "http").
	Phases []Phase
	// Failure is set when the handshake failed.
	Failure *Failure
}

// Handle is a connection that is not a net.Conn over a kernel socket (a
// QUIC connection): it lives in the process that made it, and only a
// component of that process can use it. Nothing in probe reads Value but
// the handshakes that know its Kind.
type Handle struct {
	// Kind says what Value is: ConnQUIC, a *quic.Conn.
	Kind ConnKind
	// Value is the connection.
	Value any
	// Local and Remote are its addresses, for reports.
	Local, Remote net.Addr
	// Close closes the connection. It is called once, by the owner.
	Close func() error
}

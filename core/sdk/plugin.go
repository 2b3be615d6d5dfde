package sdk

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
)

// Plugin is what a plugin provides: its Info and, for each kind of component
// it serves, a schema and a constructor. A nil constructor means the plugin
// does not serve that kind.
//
// The core decodes the user's block against the schema, applies defaults and
// passes the result as a cty object value whose attributes are exactly the
// schema's. A constructor validates the values (returning an *AttrError for a
// bad one) and must not touch the network: `probe validate` calls it too.
type Plugin struct {
	Info Info

	ResolverSchema  Schema
	NewResolver     func(cfg cty.Value) (Resolver, error)
	DialerSchema    Schema
	NewDialer       func(cfg cty.Value) (Dialer, error)
	HandshakeSchema Schema
	NewHandshaker   func(cfg cty.Value) (Handshaker, error)

	// DialerConn says what the Dialer hands to the handshakes after it:
	// ConnStream (the default), ConnNone or ConnQUIC.
	DialerConn ConnKind
	// HandshakeConn says what the Handshaker runs over: ConnStream (the
	// default) or ConnQUIC. The configuration refuses a pipeline whose
	// dialer hands on another kind.
	HandshakeConn ConnKind
}

// ConnKind says what a Dialer hands to the handshakes of its pipeline.
type ConnKind string

// The kinds of connection a Dialer hands on.
const (
	// ConnStream is a connected net.Conn in DialResponse.Conn (TCP): the
	// default.
	ConnStream ConnKind = ""
	// ConnNone is no connection at all: the dial is the whole probe (an
	// ICMP echo), its DialResponse has no Conn on success, and a pipeline
	// with such a dialer takes no handshakes (the configuration is refused).
	ConnNone ConnKind = "none"
	// ConnQUIC is a QUIC connection, which is not a socket: DialResponse's
	// Handle, whose Value is a *quic.Conn of github.com/quic-go/quic-go.
	// It cannot leave the process that dialed: the handshakes that run
	// over it must be served by the same plugin binary as the dialer.
	ConnQUIC ConnKind = "quic"
)

// String returns the kind's name, "stream" for ConnStream.
func (k ConnKind) String() string {
	if k == ConnStream {
		return "stream"
	}
	return string(k)
}

// Serves reports whether the plugin serves components of kind k.
func (p *Plugin) Serves(k Kind) bool {
	switch k {
	case KindResolver:
		return p.NewResolver != nil
	case KindDialer:
		return p.NewDialer != nil
	case KindHandshake:
		return p.NewHandshaker != nil
	}
	return false
}

// Kinds lists the kinds the plugin serves, in pipeline order.
func (p *Plugin) Kinds() []Kind {
	var ks []Kind
	for _, k := range Kinds {
		if p.Serves(k) {
			ks = append(ks, k)
		}
	}
	return ks
}

// Schema returns the schema of the plugin's component of kind k.
func (p *Plugin) Schema(k Kind) *Schema {
	switch k {
	case KindResolver:
		return &p.ResolverSchema
	case KindDialer:
		return &p.DialerSchema
	default:
		return &p.HandshakeSchema
	}
}

// New constructs the plugin's component of kind k from cfg. The result is a
// Resolver, Dialer or Handshaker according to k.
func (p *Plugin) New(k Kind, cfg cty.Value) (any, error) {
	if !p.Serves(k) {
		return nil, fmt.Errorf("plugin %q serves no %s", p.Info.Name, k)
	}
	switch k {
	case KindResolver:
		return p.NewResolver(cfg)
	case KindDialer:
		return p.NewDialer(cfg)
	default:
		return p.NewHandshaker(cfg)
	}
}

package engine

import (
	"context"

	"github.com/probe-dev/probe/core/sdk"
)

// A component in another process (a plugin binary's, through
// core/pluginhost) does better when it knows what runs around it in the
// attempt: the connection need not travel between processes, nor the
// attempt take a round trip per component. The engine tells it through the
// optional interfaces of this file, which are between the engine and the
// plugin transport: no plugin author implements them, and they change with
// the transport, not with the sdk.

// Sequencer is implemented by a Resolver that can run a whole attempt in
// one call: its resolution, the dial of the first address it found, and the
// handshakes in order, when the dialer and the handshakes live where it does
// (a plugin process serving them all). The engine uses it, where a pipeline
// allows, instead of three calls or more; ok is false when this pipeline's
// components cannot run together, and the engine calls them one by one.
type Sequencer interface {
	Sequence(ctx context.Context, req *SequenceRequest) (resp *SequenceResponse, ok bool, err error)
}

// SequenceRequest asks a Sequencer for one attempt at Host:Port.
type SequenceRequest struct {
	Host        string
	Port        uint16
	Dialer      sdk.Dialer
	Handshakers []sdk.Handshaker
}

// SequenceResponse is each component's answer, as far as the attempt went:
// Dial is nil when the resolution failed or found no address, and the
// Handshakes stop after the first that failed. The connection is closed.
// Every phase's Start is relative to the Sequence call, not to the
// component's own.
type SequenceResponse struct {
	Resolve    *sdk.ResolveResponse
	Dial       *sdk.DialResponse
	Handshakes []*sdk.HandshakeResponse
}

// HoldingDialer is implemented by a Dialer in a plugin process: told next,
// the handshaker that will run first over the connection (nil for none), it
// keeps the socket in its process when next is served there too, so that
// it need not travel.
type HoldingDialer interface {
	DialBefore(ctx context.Context, req *sdk.DialRequest, next sdk.Handshaker) (*sdk.DialResponse, error)
}

// ClosingHandshaker is implemented by a Handshaker in a plugin process:
// HandshakeLast is its Handshake when no handshake follows and the caller
// will only close the connection, which it then closes in its process
// instead of holding it for the caller.
type ClosingHandshaker interface {
	HandshakeLast(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error)
}

// dialBefore calls d, telling it next when it listens.
func dialBefore(ctx context.Context, d sdk.Dialer, req *sdk.DialRequest, next sdk.Handshaker) (*sdk.DialResponse, error) {
	if hd, ok := d.(HoldingDialer); ok {
		return hd.DialBefore(ctx, req, next)
	}
	return d.Dial(ctx, req)
}

// handshakeLast calls h, telling it when it is the last.
func handshakeLast(ctx context.Context, h sdk.Handshaker, req *sdk.HandshakeRequest, last bool) (*sdk.HandshakeResponse, error) {
	if ch, ok := h.(ClosingHandshaker); ok && last {
		return ch.HandshakeLast(ctx, req)
	}
	return h.Handshake(ctx, req)
}

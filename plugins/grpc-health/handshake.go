package grpchealth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/probe-dev/probe/core/sdk"
)

// Handshaker calls grpc.health.v1.Health/Check over the connection it is
// handed.
type Handshaker struct {
	service   string
	authority string        // "" means the target's host and port
	timeout   time.Duration // cap on the exchange, 0 for none
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{service: sdk.String(cfg, "service"), authority: sdk.String(cfg, "authority")}
	var err error
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	for _, r := range h.authority {
		if r <= ' ' || r == '/' || r == 0x7f {
			return nil, sdk.AttrErrorf("authority", "Invalid authority",
				"authority must be a host with an optional port, such as \"api.internal:443\", got %q.", h.authority)
		}
	}
	return h, nil
}

// errUsed is what the client's dialer answers when grpc-go asks for a
// second connection: the handshake has one, the pipeline's.
var errUsed = errors.New("the pipeline's connection was closed or failed, and grpc-health makes no other")

// Handshake calls Health/Check over req.Conn with grpc-go's client: a
// grpc.ClientConn whose dialer hands grpc-go req.Conn, once. The phase
// "grpc" covers the HTTP/2 preface and settings exchange and the call. A
// status other than SERVING, a failed call, or a server that does not speak
// gRPC is reported as a Failure with a nil error. The connection is not
// closed; nothing can run after the exchange over it, so the response
// hands on no other.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	authority := h.authority
	if authority == "" {
		host := req.Host
		if host == "" {
			host = req.Address.Addr().String()
		}
		authority = net.JoinHostPort(host, strconv.Itoa(int(req.Address.Port())))
	}
	attrs := map[string]any{"service": h.service, "authority": authority}
	span := sdk.StartSpan(Phase, callAt)
	var used atomic.Bool
	cc, err := grpc.NewClient("passthrough:///"+req.Address.String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), // TLS, if any, is the tls handshake's, done
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			if used.Swap(true) {
				return nil, errUsed
			}
			return borrowed{req.Conn}, nil
		}),
		grpc.WithAuthority(authority),
		grpc.WithUserAgent("probe"),
		grpc.WithDisableRetry(),
		grpc.WithDisableServiceConfig(),
	)
	if err != nil { // a bad option, not the server
		return nil, fmt.Errorf("grpc client for %s: %w", req.Address, err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: h.service})
	st := status.Convert(err)
	attrs["code"], attrs["code_number"] = st.Code().String(), int(st.Code())
	if err == nil {
		attrs["status"] = resp.GetStatus().String()
	}
	ok := err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	phase := span.End(ok, attrs)
	out := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}}
	switch {
	case ok:
		return out, nil
	case err == nil:
		out.Failure = &sdk.Failure{Phase: Phase, Class: ClassNotServing,
			Message: fmt.Sprintf("grpc health of %q at %s: %s, want SERVING", h.service, req.Address, resp.GetStatus())}
	default:
		out.Failure = &sdk.Failure{Phase: Phase, Class: classify(ctx, st.Code()),
			Message: fmt.Sprintf("grpc health check of %q at %s: %s: %s", h.service, req.Address, st.Code(), st.Message())}
	}
	return out, nil
}

// classify returns the failure class of a call that ended with code.
// grpc-go reports a connection it could not use (no HTTP/2, closed, a
// broken frame) as Unavailable or Internal.
func classify(ctx context.Context, code codes.Code) sdk.Class {
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	switch code {
	case codes.DeadlineExceeded:
		return ClassTimeout
	case codes.Canceled:
		return sdk.ClassCanceled
	case codes.Unavailable, codes.Internal:
		return ClassProtocol
	}
	return ClassStatus
}

// borrowed is the pipeline's connection as grpc-go gets it: grpc-go closes
// its connections when it is done or sees an error, but this one is the
// caller's, who closes it after the attempt.
type borrowed struct{ net.Conn }

// Close leaves the connection open, as the caller owns it, but ends the
// reads and writes grpc-go's transport has pending on it with a deadline
// in the past: without, closing the client waits for its reader until the
// server's next frame or grpc-go's own timer (a second), which the attempt
// would pay for after the check. The caller can clear the deadline.
func (b borrowed) Close() error { return b.SetDeadline(time.Unix(1, 0)) }

var _ sdk.Handshaker = (*Handshaker)(nil)

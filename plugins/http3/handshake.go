package http3handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Handshaker sends one HTTP/3 request over a QUIC connection.
type Handshaker struct {
	method  string
	target  *url.URL // path and query
	host    string   // :authority; "" means the target's
	expect  []int    // accepted codes; nil means 200-399
	maxBody int64
	timeout time.Duration
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{method: sdk.String(cfg, "method"), host: sdk.String(cfg, "host")}
	if h.method == "" || strings.ContainsAny(h.method, " \t\r\n/()<>@,;:\\\"[]?={}") {
		return nil, sdk.AttrErrorf("method", "Invalid method", "The method must be an HTTP token such as \"GET\", got %q.", h.method)
	}
	path := sdk.String(cfg, "path")
	target, err := url.ParseRequestURI(path)
	if err != nil || !strings.HasPrefix(path, "/") {
		return nil, sdk.AttrErrorf("path", "Invalid path", "The path must be an absolute path with an optional query, such as \"/healthz?full=1\", got %q.", path)
	}
	h.target = target
	if strings.ContainsFunc(h.host, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f }) {
		return nil, sdk.AttrErrorf("host", "Invalid host", "The host must be a host name with an optional port, got %q.", h.host)
	}
	if v := sdk.Value(cfg, "expect_status"); !v.IsNull() {
		for _, e := range v.AsValueSlice() {
			n, acc := e.AsBigFloat().Int64()
			if acc != big.Exact || n < 100 || n > 599 {
				return nil, sdk.AttrErrorf("expect_status", "Invalid status code", "Each expect_status entry must be a code from 100 to 599, got %s.", e.AsBigFloat().Text('g', -1))
			}
			h.expect = append(h.expect, int(n))
		}
	}
	maxBody, err := sdk.Int(cfg, "max_body_bytes")
	if err != nil {
		return nil, err
	}
	if maxBody < 0 {
		return nil, sdk.AttrErrorf("max_body_bytes", "Invalid size", "max_body_bytes must be 0 or more, got %d.", maxBody)
	}
	h.maxBody = int64(maxBody)
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return h, nil
}

// Handshake sends the request over the QUIC connection of req.Handle. The
// phase "http3" runs from the request to the end of the body read, with
// ttfb_ms (to the response's headers) and transfer_ms (the body). A status
// outside expect_status or a broken exchange is a Failure with a nil error;
// a request with no QUIC connection is a Go error (the configuration
// refuses such a pipeline).
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	conn, ok := quicConn(req.Handle)
	if !ok {
		return nil, errors.New("http3 runs over the QUIC connection of a quic dialer, and was handed none")
	}
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	u := *h.target
	u.Scheme, u.Host = "https", h.authority(req)
	hreq, err := http.NewRequestWithContext(ctx, h.method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("http3 request %s: %w", u.String(), err)
	}
	hreq.Header.Set("User-Agent", "probe")
	attrs := map[string]any{"url": u.String()}
	span := sdk.StartSpan(Phase, callAt)
	start := time.Now()
	resp, err := (&http3.Transport{}).NewClientConn(conn).RoundTrip(hreq)
	if err != nil {
		phase := span.End(false, attrs)
		return &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}, Failure: &sdk.Failure{Phase: Phase, Class: classify(ctx, err),
			Message: fmt.Sprintf("http3 %s %s: %v", h.method, u.String(), err)}}, nil
	}
	ttfb := time.Since(start)
	n, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, h.maxBody))
	_ = resp.Body.Close()
	transfer := time.Since(start) - ttfb
	attrs["status"] = resp.StatusCode
	attrs["proto"] = resp.Proto
	attrs["ttfb_ms"] = sdk.Milliseconds(ttfb.Round(time.Microsecond))
	attrs["transfer_ms"] = sdk.Milliseconds(transfer.Round(time.Microsecond))
	attrs["body_bytes"] = n
	var f *sdk.Failure
	switch {
	case rerr != nil:
		f = &sdk.Failure{Phase: Phase, Class: classify(ctx, rerr), Message: fmt.Sprintf("http3 %s %s: read the body: %v", h.method, u.String(), rerr)}
	case !h.accepts(resp.StatusCode):
		f = &sdk.Failure{Phase: Phase, Class: ClassStatus, Message: fmt.Sprintf("http3 %s %s: status %d", h.method, u.String(), resp.StatusCode)}
	}
	phase := span.End(f == nil, attrs)
	return &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}, Failure: f}, nil
}

// quicConn returns the QUIC connection of handle.
func quicConn(handle *sdk.Handle) (*quic.Conn, bool) {
	if handle == nil || handle.Kind != sdk.ConnQUIC {
		return nil, false
	}
	c, ok := handle.Value.(*quic.Conn)
	return c, ok
}

// authority returns the request's :authority: host, else the target's host
// with the port unless it is 443.
func (h *Handshaker) authority(req *sdk.HandshakeRequest) string {
	if h.host != "" {
		return h.host
	}
	host := req.Host
	if host == "" {
		host = req.Address.Addr().WithZone("").String()
	}
	if req.Address.Port() == 443 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(int(req.Address.Port())))
}

// accepts reports whether status is expected.
func (h *Handshaker) accepts(status int) bool {
	if h.expect == nil {
		return status >= 200 && status <= 399
	}
	return slices.Contains(h.expect, status)
}

// classify returns the failure class of an exchange error.
func classify(ctx context.Context, err error) sdk.Class {
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	var (
		idle *quic.IdleTimeoutError
		ne   net.Error
	)
	if errors.As(err, &idle) || errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassProtocol
}

var _ sdk.Handshaker = (*Handshaker)(nil)

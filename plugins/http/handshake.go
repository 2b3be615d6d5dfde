package httphandshake

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/probe-dev/probe/core/sdk"
)

const (
	// defaultMaxBody is max_body_bytes when unset: 1 MiB.
	defaultMaxBody = 1 << 20
	// maxRedirects is how many redirects follow_redirects follows at most.
	maxRedirects = 10
)

// Handshaker sends one HTTP request (and, with follow_redirects, the requests
// its redirects lead to) over a connection and checks the response.
type Handshaker struct {
	method  string
	target  *url.URL       // path and query of the request
	host    string         // Host header; "" means the target's host and port
	header  http.Header    // request headers
	expect  []statusRange  // accepted status codes
	body    *regexp.Regexp // nil means the body is not checked
	maxBody int64          // most body bytes read
	follow  bool           // follow same-origin redirects
	timeout time.Duration  // cap on the exchange, 0 for none
	// propagate sends a W3C traceparent header of a new trace.
	propagate bool
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema; the first time it is called in a process it warms the
// process up for exchanges (warm). A bad attribute value gives an
// *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	warmOnce.Do(warmUp)
	return h, nil
}

// configure is New without the warm-up.
func configure(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{
		method:    sdk.String(cfg, "method"),
		host:      sdk.String(cfg, "host"),
		follow:    sdk.Bool(cfg, "follow_redirects"),
		propagate: sdk.Bool(cfg, "propagate"),
		header:    http.Header{"User-Agent": {"probe"}},
	}
	if h.method == "" || strings.ContainsFunc(h.method, notTokenChar) {
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
	if err := h.headers(cfg); err != nil {
		return nil, err
	}
	if h.expect, err = parseStatuses(sdk.Strings(cfg, "expect_status")); err != nil {
		return nil, err
	}
	if re := sdk.String(cfg, "expect_body"); re != "" {
		if h.body, err = regexp.Compile(re); err != nil {
			return nil, sdk.AttrErrorf("expect_body", "Invalid regular expression", "expect_body does not compile: %s.", err)
		}
	}
	n, err := sdk.Int(cfg, "max_body_bytes")
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, sdk.AttrErrorf("max_body_bytes", "Invalid number", "max_body_bytes must not be negative, got %d.", n)
	}
	h.maxBody = int64(n)
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return h, nil
}

// headers reads the headers attribute of cfg into h.header.
func (h *Handshaker) headers(cfg cty.Value) error {
	v := sdk.Value(cfg, "headers")
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	for it := v.ElementIterator(); it.Next(); {
		k, val := it.Element()
		name := k.AsString()
		switch {
		case name == "" || strings.ContainsFunc(name, notTokenChar):
			return sdk.AttrErrorf("headers", "Invalid header name", "%q is not a valid header name.", name)
		case strings.EqualFold(name, "Host"):
			return sdk.AttrErrorf("headers", "Host header in headers", "Set the Host header with the host attribute.")
		case val.IsNull() || strings.ContainsAny(val.AsString(), "\r\n\x00"):
			return sdk.AttrErrorf("headers", "Invalid header value", "The value of header %q must be a string without line breaks.", name)
		}
		h.header.Set(name, val.AsString())
	}
	return nil
}

// notTokenChar reports whether r may not appear in an HTTP token (a method
// or header name, RFC 9110 §5.6.2).
func notTokenChar(r rune) bool {
	return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// connKey is the context key under which Handshake hands its connection to
// the transport's dial functions.
type connKey struct{}

// transport is the transport of every Handshaker of the process: it holds
// no connection (NewClientConn never pools), and once set up by warm, the
// first exchange of each Handshaker does not pay for its lazy HTTP/2
// set-up.
var transport = newTransport()

// newTransport returns a transport whose "dials" return the connection in
// the context: a ClientConn made with it runs over the probed connection,
// HTTP/2 when the TLS connection negotiated h2. It never uses a proxy and
// never decompresses.
func newTransport() *http.Transport {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		if c, ok := ctx.Value(connKey{}).(net.Conn); ok {
			return c, nil
		}
		return nil, errors.New("no connection to run HTTP over")
	}
	t := &http.Transport{DialContext: dial, DialTLSContext: dial, DisableCompression: true, Protocols: new(http.Protocols)}
	t.Protocols.SetHTTP1(true)
	t.Protocols.SetHTTP2(true)
	return t
}

// Handshake sends the request over req.Conn and reads the response: the
// http phase runs from the first byte the request writes to the last byte
// of the body read, and reports time to first byte and transfer apart. Over
// a TLS connection the scheme is https and the protocol is HTTP/2 when the
// TLS handshake negotiated h2; else HTTP/1.1. A status outside
// expect_status, a body that does not match expect_body, or a broken
// exchange is a Failure with a nil error. The connection it hands on
// (Conn) is req.Conn with the HTTP client connection now running over it,
// for the caller to close; an http handshake after this one sends its
// request over that client connection.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	conn, err := h.clientConn(ctx, req)
	u := *h.target
	u.Scheme, u.Host = conn.scheme, h.authority(req, conn.scheme)

	header, traced := h.header, trace.SpanContext{}
	if h.propagate {
		header, traced = traceparent(h.header)
	}
	span := sdk.StartSpan(Phase, callAt)
	start := time.Now()
	r := exchange{url: &u, err: err}
	if err == nil {
		r = h.roundTrips(ctx, conn.cc, &u, header)
	}
	failure := h.check(ctx, &r)
	phase := span.End(failure == nil, map[string]any{"method": h.method, "url": r.url.String()})
	if traced.IsValid() {
		phase.Attrs["trace_id"] = traced.TraceID().String()
		phase.Attrs["span_id"] = traced.SpanID().String()
	}
	if r.resp != nil {
		ttfb := r.firstByte.Sub(start)
		a := phase.Attrs
		a["status"] = r.resp.StatusCode
		a["version"] = r.resp.Proto
		a["content_length"] = r.resp.ContentLength
		a["body_bytes"] = r.bodyBytes
		a["body_truncated"] = r.truncated
		a["redirects"] = r.redirects
		// Whole microseconds: the two add up to the phase within 2µs.
		a["ttfb_ms"] = sdk.Milliseconds(ttfb.Truncate(time.Microsecond))
		a["transfer_ms"] = sdk.Milliseconds(max(phase.Duration-ttfb, 0).Truncate(time.Microsecond))
		if loc := r.resp.Header.Get("Location"); loc != "" && isRedirect(r.resp.StatusCode) {
			a["location"] = loc
		}
		if lm, err := http.ParseTime(r.resp.Header.Get("Last-Modified")); err == nil {
			a["last_modified"] = lm.UTC().Format(time.RFC3339)
		}
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}, Failure: failure}
	if conn.cc != nil {
		resp.Conn = conn
	}
	return resp, nil
}

// traceparent returns header with a W3C traceparent of a new sampled trace
// whose parent span is the phase's, and that span's context.
func traceparent(header http.Header) (http.Header, trace.SpanContext) {
	var cfg trace.SpanContextConfig
	_, _ = rand.Read(cfg.TraceID[:]) // crypto/rand never fails
	_, _ = rand.Read(cfg.SpanID[:])
	cfg.TraceFlags = trace.FlagsSampled
	sc := trace.NewSpanContext(cfg)
	header = header.Clone()
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(header))
	return header, sc
}

// clientConn is the connection an http handshake hands on: the probed
// connection with the HTTP client connection that runs over it. An http
// handshake after another on one connection sends its request over the
// same client connection, as a browser would: the next request of
// HTTP/1.1 keep-alive, or another HTTP/2 stream. A second client
// connection over the same bytes could not work: over HTTP/1.1 the first
// one's reader takes the second's response ("Unsolicited response" on
// stderr), and over HTTP/2 it would start the protocol again.
type clientConn struct {
	net.Conn // the probed connection: only cc reads and writes it
	cc       *http.ClientConn
	scheme   string
}

// Close closes the client connection and the probed connection.
func (c *clientConn) Close() error {
	err := c.cc.Close()
	if cerr := c.Conn.Close(); !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}

// clientConn returns the client connection of req.Conn: that of an http
// handshake before this one, else a new one over it, HTTPS over a TLS
// connection. When it cannot make one, it returns why, and the scheme.
func (h *Handshaker) clientConn(ctx context.Context, req *sdk.HandshakeRequest) (*clientConn, error) {
	if c, ok := req.Conn.(*clientConn); ok {
		return c, nil
	}
	c := &clientConn{Conn: req.Conn, scheme: "http"}
	if _, ok := req.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		c.scheme = "https"
	}
	var err error
	c.cc, err = transport.NewClientConn(context.WithValue(ctx, connKey{}, req.Conn), c.scheme, req.Address.String())
	return c, err
}

// authority is the Host header: the host attribute, else the target's host
// (or, lacking one, the address) with the port unless it is the scheme's
// default.
func (h *Handshaker) authority(req *sdk.HandshakeRequest, scheme string) string {
	if h.host != "" {
		return h.host
	}
	host := req.Host
	if host == "" {
		host = req.Address.Addr().WithZone("").String()
	}
	port := req.Address.Port()
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// exchange is what one Handshake learned.
type exchange struct {
	url       *url.URL       // the last request's URL
	resp      *http.Response // the last response; nil when none arrived
	firstByte time.Time      // when the last response's first byte arrived
	redirects int            // redirects followed
	body      []byte         // the body read, when expect_body is set
	bodyBytes int64          // body bytes read, at most maxBody
	truncated bool           // the body had more than maxBody bytes
	err       error          // why the exchange broke off
}

// roundTrips sends the request over cc, follows redirects when asked, and
// reads the last response's body.
func (h *Handshaker) roundTrips(ctx context.Context, cc *http.ClientConn, u *url.URL, header http.Header) exchange {
	r := exchange{url: u}
	method := h.method
	for {
		var firstByte time.Time
		trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { firstByte = time.Now() }}
		hreq := &http.Request{Method: method, URL: r.url, Host: r.url.Host, Header: header.Clone(), Body: http.NoBody}
		resp, err := cc.RoundTrip(hreq.WithContext(httptrace.WithClientTrace(ctx, trace)))
		if err != nil {
			r.err = err
			return r
		}
		r.resp, r.firstByte = resp, firstByte
		next := h.redirect(resp, r.url)
		if next == nil || r.redirects == maxRedirects {
			break
		}
		// Drain the redirect's body so that HTTP/1.1 can send the next
		// request on the same connection.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, defaultMaxBody))
		if err = errors.Join(err, resp.Body.Close()); err != nil {
			r.err = err
			return r
		}
		r.url = next
		r.redirects++
		if resp.StatusCode <= http.StatusSeeOther && method != http.MethodHead { // 301, 302, 303
			method = http.MethodGet
		}
	}
	defer r.resp.Body.Close()
	dst := io.Discard
	var buf bytes.Buffer
	if h.body != nil {
		dst = &buf
	}
	// One byte beyond the limit tells whether there was more.
	n, err := io.Copy(dst, io.LimitReader(r.resp.Body, h.maxBody+1))
	r.truncated = n > h.maxBody
	r.bodyBytes = min(n, h.maxBody)
	r.body = buf.Bytes()[:min(buf.Len(), int(h.maxBody))]
	r.err = err
	return r
}

// redirect returns the URL a redirect response leads to when it is to be
// followed: follow_redirects is set and the redirect stays on the
// connection (same scheme, host and port, and the server keeps the
// connection open). Else nil.
func (h *Handshaker) redirect(resp *http.Response, from *url.URL) *url.URL {
	if !h.follow || !isRedirect(resp.StatusCode) || resp.Close {
		return nil
	}
	to, err := resp.Location()
	if err != nil || origin(to) != origin(from) {
		return nil
	}
	return to
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// origin is u's scheme, host and port, the port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// check returns the failure of an exchange, nil when it succeeded.
func (h *Handshaker) check(ctx context.Context, r *exchange) *sdk.Failure {
	prefix := fmt.Sprintf("http %s %s: ", h.method, r.url)
	switch {
	case r.err != nil:
		return &sdk.Failure{Phase: Phase, Class: classify(ctx, r.err), Message: prefix + r.err.Error()}
	case !accepts(h.expect, r.resp.StatusCode):
		return &sdk.Failure{Phase: Phase, Class: ClassStatus,
			Message: fmt.Sprintf("%sstatus %d, want %s", prefix, r.resp.StatusCode, formatStatuses(h.expect))}
	case h.body != nil && !h.body.Match(r.body):
		return &sdk.Failure{Phase: Phase, Class: ClassBodyMismatch,
			Message: fmt.Sprintf("%sthe first %d bytes of the body do not match %q", prefix, r.bodyBytes, h.body)}
	}
	return nil
}

// classify returns the failure class of a broken exchange.
func classify(ctx context.Context, err error) sdk.Class {
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return sdk.ClassTCPReset
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassProtocol
}

var _ sdk.Handshaker = (*Handshaker)(nil)

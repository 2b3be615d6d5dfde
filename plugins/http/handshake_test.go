package httphandshake

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// newHandshaker builds a handshaker through the plugin, as the core does.
func newHandshaker(t *testing.T, values map[string]cty.Value) (*Handshaker, error) {
	t.Helper()
	cfg, err := Plugin().HandshakeSchema.Config(values)
	if err != nil {
		t.Fatalf("Config(%v): %v", values, err)
	}
	h, err := Plugin().NewHandshaker(cfg)
	if err != nil {
		return nil, err
	}
	return h.(*Handshaker), nil
}

// server is an httptest server on 127.0.0.1 that records the requests it
// got.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

// startServer starts handler over plain HTTP, or over TLS with HTTP/2
// enabled when tls is true.
func startServer(t *testing.T, tls bool, handler http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.mu.Unlock()
		handler(w, r)
	}))
	if tls {
		s.EnableHTTP2 = true
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) addr() netip.AddrPort {
	return s.Listener.Addr().(*net.TCPAddr).AddrPort()
}

func (s *server) got() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// probe connects to s (with a TLS handshake offering alpn when s is a TLS
// server) and runs h over the connection for host.
func probe(t *testing.T, ctx context.Context, h *Handshaker, s *server, host string, alpn ...string) *sdk.HandshakeResponse {
	t.Helper()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if s.TLS != nil {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, NextProtos: alpn})
		if err := tc.HandshakeContext(ctx); err != nil {
			t.Fatal(err)
		}
		conn = tc
	}
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: host, Address: s.addr()})
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one %q phase", resp.Phases, Phase)
	}
	if c, ok := resp.Conn.(*clientConn); !ok || c.Conn != conn {
		t.Errorf("Conn = %v, want the connection with its HTTP client connection", resp.Conn)
	}
	return resp
}

// msAttr returns the attribute name of p as a duration.
func msAttr(t *testing.T, p sdk.Phase, name string) time.Duration {
	t.Helper()
	v, ok := p.Attrs[name].(float64)
	if !ok {
		t.Fatalf("attribute %s = %#v, want float64 milliseconds", name, p.Attrs[name])
	}
	return time.Duration(v * float64(time.Millisecond))
}

// checkSplit checks that ttfb_ms and transfer_ms add up to the phase.
func checkSplit(t *testing.T, p sdk.Phase) {
	t.Helper()
	sum := msAttr(t, p, "ttfb_ms") + msAttr(t, p, "transfer_ms")
	if d := sum - p.Duration; d < -2*time.Microsecond || d > 2*time.Microsecond {
		t.Errorf("ttfb_ms + transfer_ms = %v, phase %v: they must add up", sum, p.Duration)
	}
}

func TestExchange(t *testing.T) {
	hello := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello, probe\n") }
	tests := []struct {
		name    string
		tls     bool
		alpn    []string
		values  map[string]cty.Value
		handler http.HandlerFunc
		want    map[string]any // attrs besides the timings and url
		class   sdk.Class      // "" for success
	}{
		{
			name: "http/1.1 over tcp", handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
		},
		{
			name: "h2 over tls", tls: true, alpn: []string{"h2", "http/1.1"}, handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/2.0", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
		},
		{
			name: "http/1.1 over tls without alpn", tls: true, handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
		},
		{
			name: "status outside the default", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) },
			want: map[string]any{"method": "GET", "status": 503, "version": "HTTP/1.1", "content_length": int64(0),
				"body_bytes": int64(0), "body_truncated": false, "redirects": 0},
			class: ClassStatus,
		},
		{
			name: "expected status", values: map[string]cty.Value{"expect_status": cty.TupleVal([]cty.Value{cty.NumberIntVal(204), cty.StringVal("5xx")})},
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) },
			want: map[string]any{"method": "GET", "status": 503, "version": "HTTP/1.1", "content_length": int64(0),
				"body_bytes": int64(0), "body_truncated": false, "redirects": 0},
		},
		{
			name: "body matches", values: map[string]cty.Value{"expect_body": cty.StringVal(`^hello, \w+`)}, handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
		},
		{
			name: "body mismatch", tls: true, alpn: []string{"h2"}, values: map[string]cty.Value{"expect_body": cty.StringVal("goodbye")}, handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/2.0", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
			class: ClassBodyMismatch,
		},
		{
			name: "body truncated", values: map[string]cty.Value{"max_body_bytes": cty.NumberIntVal(5), "expect_body": cty.StringVal("^hello$")}, handler: hello,
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(5), "body_truncated": true, "redirects": 0},
		},
		{
			name: "last modified", handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Last-Modified", "Tue, 02 Jan 2024 03:04:05 GMT")
				io.WriteString(w, "hello, probe\n")
			},
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0, "last_modified": "2024-01-02T03:04:05Z"},
		},
		{
			name: "last modified not a date", handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Last-Modified", "yesterday")
				io.WriteString(w, "hello, probe\n")
			},
			want: map[string]any{"method": "GET", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(13), "body_truncated": false, "redirects": 0},
		},
		{
			name: "head", values: map[string]cty.Value{"method": cty.StringVal("HEAD")}, handler: hello,
			want: map[string]any{"method": "HEAD", "status": 200, "version": "HTTP/1.1", "content_length": int64(13),
				"body_bytes": int64(0), "body_truncated": false, "redirects": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.tls, tt.handler)
			h, err := newHandshaker(t, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			resp := probe(t, t.Context(), h, s, "api.probe.test", tt.alpn...)
			p := resp.Phases[0]
			checkSplit(t, p)
			got := map[string]any{}
			for k, v := range p.Attrs {
				if k != "ttfb_ms" && k != "transfer_ms" && k != "url" {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			scheme := map[bool]string{false: "http", true: "https"}[tt.tls]
			if want := scheme + "://api.probe.test:" + s.URL[strings.LastIndex(s.URL, ":")+1:] + "/"; p.Attrs["url"] != want {
				t.Errorf("url = %v, want %s", p.Attrs["url"], want)
			}
			switch {
			case tt.class == "" && (resp.Failure != nil || !p.OK):
				t.Errorf("failure %v (ok %v), want success", resp.Failure, p.OK)
			case tt.class != "" && (resp.Failure == nil || resp.Failure.Class != tt.class || resp.Failure.Phase != Phase || p.OK):
				t.Errorf("failure %v (ok %v), want class %s", resp.Failure, p.OK, tt.class)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name     string
		values   map[string]cty.Value
		host     string
		wantHost string
		wantPath string
		wantHdr  map[string]string
	}{
		{name: "defaults", host: "api.probe.test", wantHost: "api.probe.test:PORT", wantPath: "/",
			wantHdr: map[string]string{"User-Agent": "probe"}},
		{name: "ip literal host", host: "127.0.0.1", wantHost: "127.0.0.1:PORT", wantPath: "/",
			wantHdr: map[string]string{"User-Agent": "probe"}},
		{
			name: "host, path and headers",
			values: map[string]cty.Value{
				"host": cty.StringVal("status.example"), "path": cty.StringVal("/healthz?full=1"),
				"headers": cty.MapVal(map[string]cty.Value{"user-agent": cty.StringVal("monitor/2"), "X-Probe": cty.StringVal("yes")}),
			},
			host: "api.probe.test", wantHost: "status.example", wantPath: "/healthz?full=1",
			wantHdr: map[string]string{"User-Agent": "monitor/2", "X-Probe": "yes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, false, func(http.ResponseWriter, *http.Request) {})
			h, err := newHandshaker(t, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if resp := probe(t, t.Context(), h, s, tt.host); resp.Failure != nil {
				t.Fatal(resp.Failure)
			}
			reqs := s.got()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			wantHost := strings.ReplaceAll(tt.wantHost, "PORT", s.URL[strings.LastIndex(s.URL, ":")+1:])
			if r.Host != wantHost || r.RequestURI != tt.wantPath {
				t.Errorf("Host %q, request URI %q; want %q, %q", r.Host, r.RequestURI, wantHost, tt.wantPath)
			}
			for k, v := range tt.wantHdr {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if enc := r.Header.Get("Accept-Encoding"); enc != "" {
				t.Errorf("Accept-Encoding %q, want none: probe reads bodies as sent", enc)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	other := startServer(t, false, func(http.ResponseWriter, *http.Request) {})
	handler := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.Redirect(w, r, "/one", http.StatusFound)
		case "/one":
			http.Redirect(w, r, "/two", http.StatusPermanentRedirect)
		case "/two":
			io.WriteString(w, r.Method)
		case "/away":
			http.Redirect(w, r, other.URL+"/", http.StatusMovedPermanently)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}
	tests := []struct {
		name      string
		tls       bool
		values    map[string]cty.Value
		want      map[string]any
		wantPaths []string
		class     sdk.Class
	}{
		{
			name:      "not followed by default",
			want:      map[string]any{"status": 302, "redirects": 0, "location": "/one"},
			wantPaths: []string{"/"},
		},
		{
			name:      "not followed, not expected",
			values:    map[string]cty.Value{"expect_status": cty.ListVal([]cty.Value{cty.StringVal("200")})},
			want:      map[string]any{"status": 302, "redirects": 0, "location": "/one"},
			wantPaths: []string{"/"},
			class:     ClassStatus,
		},
		{
			name:      "followed on the connection",
			values:    map[string]cty.Value{"follow_redirects": cty.True, "method": cty.StringVal("POST")},
			want:      map[string]any{"status": 200, "redirects": 2, "body_bytes": int64(3)}, // 302 makes the POST a GET
			wantPaths: []string{"/", "/one", "/two"},
		},
		{
			name:      "followed over h2",
			tls:       true,
			values:    map[string]cty.Value{"follow_redirects": cty.True},
			want:      map[string]any{"status": 200, "redirects": 2, "version": "HTTP/2.0"},
			wantPaths: []string{"/", "/one", "/two"},
		},
		{
			name:      "another origin is not followed",
			values:    map[string]cty.Value{"follow_redirects": cty.True, "path": cty.StringVal("/away")},
			want:      map[string]any{"status": 301, "redirects": 0, "location": other.URL + "/"},
			wantPaths: []string{"/away"},
		},
		{
			name:      "at most 10",
			values:    map[string]cty.Value{"follow_redirects": cty.True, "path": cty.StringVal("/loop")},
			want:      map[string]any{"status": 302, "redirects": 10, "location": "/loop"},
			wantPaths: strings.Fields(strings.Repeat("/loop ", 11)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.tls, handler)
			h, err := newHandshaker(t, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			resp := probe(t, t.Context(), h, s, "127.0.0.1", "h2")
			p := resp.Phases[0]
			got := map[string]any{}
			for k := range tt.want {
				got[k] = p.Attrs[k]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			var paths []string
			for _, r := range s.got() {
				paths = append(paths, r.URL.Path)
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if got := resp.Failure; (tt.class == "") != (got == nil) || (got != nil && got.Class != tt.class) {
				t.Errorf("failure %v, want class %q", got, tt.class)
			}
			checkSplit(t, p)
		})
	}
}

// TestTimings checks the sub-timings against servers that wait on purpose.
// The whole phase lasts at least the wait; ttfb_ms covers a wait before the
// first byte exactly, while transfer_ms starts when the client received the
// first byte, a little after the server sent it: its bound allows for that.
func TestTimings(t *testing.T) {
	const delay = 50 * time.Millisecond
	const margin = 30 * time.Millisecond // for a busy machine
	const lag = 10 * time.Millisecond    // of the first byte's receipt behind its sending
	tests := []struct {
		name           string
		tls            bool
		handler        http.HandlerFunc
		ttfb, transfer [2]time.Duration // bounds
	}{
		{
			name:     "slow first byte",
			handler:  func(w http.ResponseWriter, _ *http.Request) { time.Sleep(delay); io.WriteString(w, "late\n") },
			ttfb:     [2]time.Duration{delay, delay + margin},
			transfer: [2]time.Duration{0, margin},
		},
		{
			name: "slow body over h2", tls: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "first half\n")
				w.(http.Flusher).Flush()
				time.Sleep(delay)
				io.WriteString(w, "second half\n")
			},
			ttfb:     [2]time.Duration{0, margin},
			transfer: [2]time.Duration{delay - lag, delay + margin},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.tls, tt.handler)
			h, err := newHandshaker(t, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := probe(t, t.Context(), h, s, "127.0.0.1", "h2")
			if resp.Failure != nil {
				t.Fatal(resp.Failure)
			}
			p := resp.Phases[0]
			checkSplit(t, p)
			if p.Duration < delay {
				t.Errorf("phase %v, want at least the server's %v", p.Duration, delay)
			}
			for name, bounds := range map[string][2]time.Duration{"ttfb_ms": tt.ttfb, "transfer_ms": tt.transfer} {
				if got := msAttr(t, p, name); got < bounds[0] || got > bounds[1] {
					t.Errorf("%s = %v, want %v to %v", name, got, bounds[0], bounds[1])
				}
			}
		})
	}
}

func TestBrokenExchange(t *testing.T) {
	tests := []struct {
		name    string
		serve   func(net.Conn)
		values  map[string]cty.Value
		class   sdk.Class
		minimum time.Duration // of the phase
	}{
		{name: "garbage", serve: func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") }, class: ClassProtocol},
		{name: "closed", serve: func(c net.Conn) { c.Read(make([]byte, 1024)) }, class: ClassProtocol},
		{
			name: "reset",
			serve: func(c net.Conn) {
				c.Read(make([]byte, 1024))
				c.(*net.TCPConn).SetLinger(0)
			},
			class: sdk.ClassTCPReset,
		},
		{
			name:   "silent",
			serve:  func(c net.Conn) { time.Sleep(time.Second) },
			values: map[string]cty.Value{"timeout": cty.StringVal("100ms")},
			class:  ClassTimeout, minimum: 100 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				tt.serve(c)
				c.Close()
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			h, err := newHandshaker(t, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.Handshake(t.Context(), &sdk.HandshakeRequest{Conn: conn, Host: "127.0.0.1",
				Address: ln.Addr().(*net.TCPAddr).AddrPort()})
			if err != nil {
				t.Fatal(err)
			}
			p := resp.Phases[0]
			if resp.Failure == nil || resp.Failure.Class != tt.class || p.OK {
				t.Fatalf("failure %v (ok %v), want class %s", resp.Failure, p.OK, tt.class)
			}
			if p.Duration < tt.minimum || p.Duration > tt.minimum+200*time.Millisecond {
				t.Errorf("phase ran %v, want %v to %v", p.Duration, tt.minimum, tt.minimum+200*time.Millisecond)
			}
			if _, ok := p.Attrs["status"]; ok {
				t.Errorf("attrs %v: no status without a response", p.Attrs)
			}
		})
	}
}

// TestCanceled cancels the attempt while the server thinks.
func TestCanceled(t *testing.T) {
	s := startServer(t, false, func(http.ResponseWriter, *http.Request) { time.Sleep(time.Second) })
	h, err := newHandshaker(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	resp := probe(t, ctx, h, s, "127.0.0.1")
	if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
		t.Errorf("failure %v, want canceled", resp.Failure)
	}
	if d := resp.Phases[0].Duration; math.Abs(float64(d-50*time.Millisecond)) > float64(40*time.Millisecond) {
		t.Errorf("phase ran %v, want about 50ms", d)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		attr   string
		values map[string]cty.Value
	}{
		{"method", map[string]cty.Value{"method": cty.StringVal("GET /")}},
		{"path", map[string]cty.Value{"path": cty.StringVal("healthz")}},
		{"host", map[string]cty.Value{"host": cty.StringVal("a b")}},
		{"headers", map[string]cty.Value{"headers": cty.MapVal(map[string]cty.Value{"Bad Name": cty.StringVal("x")})}},
		{"headers", map[string]cty.Value{"headers": cty.MapVal(map[string]cty.Value{"Host": cty.StringVal("x")})}},
		{"headers", map[string]cty.Value{"headers": cty.MapVal(map[string]cty.Value{"X-A": cty.StringVal("a\r\nb")})}},
		{"expect_status", map[string]cty.Value{"expect_status": cty.ListVal([]cty.Value{cty.StringVal("600")})}},
		{"expect_status", map[string]cty.Value{"expect_status": cty.ListVal([]cty.Value{cty.StringVal("300-200")})}},
		{"expect_status", map[string]cty.Value{"expect_status": cty.ListVal([]cty.Value{cty.StringVal("9xx")})}},
		{"expect_body", map[string]cty.Value{"expect_body": cty.StringVal("(")}},
		{"max_body_bytes", map[string]cty.Value{"max_body_bytes": cty.NumberIntVal(-1)}},
		{"timeout", map[string]cty.Value{"timeout": cty.StringVal("soon")}},
	}
	for _, tt := range tests {
		t.Run(tt.attr, func(t *testing.T) {
			_, err := newHandshaker(t, tt.values)
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tt.attr {
				t.Errorf("New(%v) error = %v, want an AttrError for %s", tt.values, err, tt.attr)
			}
		})
	}
}

func TestStatuses(t *testing.T) {
	rs, err := parseStatuses([]string{"200", "3xx", "400-404"})
	if err != nil {
		t.Fatal(err)
	}
	for status, want := range map[int]bool{199: false, 200: true, 201: false, 300: true, 399: true, 404: true, 405: false} {
		if got := accepts(rs, status); got != want {
			t.Errorf("accepts(%d) = %v, want %v", status, got, want)
		}
	}
	if got := formatStatuses(rs); got != "200, 300-399, 400-404" {
		t.Errorf("formatStatuses = %q", got)
	}
}

// TestWarm checks that the warm-up New runs once per process completes both
// of its exchanges, HTTP/1.1 and HTTP/2 over TLS: its error is otherwise
// ignored, and a broken warm-up would leave the first exchange cold.
func TestWarm(t *testing.T) {
	start := time.Now()
	if err := warm(); err != nil {
		t.Fatalf("warm-up exchange: %v", err)
	}
	t.Logf("warm-up took %v", time.Since(start))
}

// TestSecondHandshake: two http handshakes on one connection (a pipeline
// that lists two) send their requests over the same client connection, the
// second request of HTTP/1.1 keep-alive or a second HTTP/2 stream, also
// when the first had its own timeout. Before, the second made a client
// connection of its own over the same bytes: the first one's reader took
// its response, net/http logged "Unsolicited response" and the second
// handshake failed. When the server closes the connection after the
// first response, the second fails as http.protocol.
func TestSecondHandshake(t *testing.T) {
	var logged strings.Builder
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, r.URL.Path+" via "+r.RemoteAddr)
	}
	for _, tt := range []struct {
		name    string
		tls     bool
		first   string
		version string
		class   sdk.Class // of the second; "" for ok
	}{
		{"HTTP/1.1", false, "/one", "HTTP/1.1", ""},
		{"HTTP/2", true, "/one", "HTTP/2.0", ""},
		{"closed after the first", false, "/close", "HTTP/1.1", ClassProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.tls, handler)
			first, err := newHandshaker(t, map[string]cty.Value{"path": cty.StringVal(tt.first), "timeout": cty.StringVal("1s"),
				"expect_body": cty.StringVal("via")})
			if err != nil {
				t.Fatal(err)
			}
			second, err := newHandshaker(t, map[string]cty.Value{"path": cty.StringVal("/two"), "expect_body": cty.StringVal("^/two via")})
			if err != nil {
				t.Fatal(err)
			}
			resp := probe(t, t.Context(), first, s, "api.probe.test", "h2")
			if resp.Failure != nil || resp.Phases[0].Attrs["version"] != tt.version {
				t.Fatalf("first: %+v %v", resp.Failure, resp.Phases[0].Attrs)
			}
			again, err := second.Handshake(t.Context(), &sdk.HandshakeRequest{Conn: resp.Conn, Host: "api.probe.test", Address: s.addr()})
			if err != nil {
				t.Fatal(err)
			}
			if tt.class != "" {
				if again.Failure == nil || again.Failure.Class != tt.class {
					t.Errorf("second: failure %+v, want %s", again.Failure, tt.class)
				}
				return
			}
			if again.Failure != nil || again.Phases[0].Attrs["status"] != 200 || again.Conn != resp.Conn {
				t.Fatalf("second: failure %+v, attrs %v, conn %v", again.Failure, again.Phases[0].Attrs, again.Conn)
			}
			got := s.got()
			if len(got) != 2 || got[0].RemoteAddr != got[1].RemoteAddr || got[1].URL.Path != "/two" {
				t.Errorf("requests %v, want /one then /two from one connection", got)
			}
			if err := again.Conn.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	if logged.Len() > 0 {
		t.Errorf("net/http logged:\n%s", logged.String())
	}
}

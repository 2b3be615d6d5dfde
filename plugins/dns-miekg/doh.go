package dnsmiekg

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// dohContentType is the media type of a DNS message over HTTPS (RFC 8484 §6).
const dohContentType = "application/dns-message"

// doh is the endpoint of transport "doh": where queries go and how.
type doh struct {
	url    *url.URL
	method string // http.MethodGet or http.MethodPost
}

// parseDoH reads url and method for transport "doh".
func parseDoH(cfg cty.Value) (*doh, error) {
	raw := sdk.String(cfg, "url")
	if raw == "" {
		return nil, sdk.AttrErrorf("url", "Missing DoH URL", `transport "doh" needs url, the endpoint's https URL such as "https://dns.example/dns-query".`)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return nil, sdk.AttrErrorf("url", "Invalid DoH URL",
			`url must be an https URL with a host and no user or fragment, such as "https://dns.example/dns-query", got %q.`, raw)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	d := &doh{url: u, method: http.MethodGet}
	switch m := strings.ToUpper(sdk.String(cfg, "method")); m {
	case "", http.MethodGet:
	case http.MethodPost:
		d.method = m
	default:
		return nil, sdk.AttrErrorf("method", "Invalid method", `method must be "GET" or "POST", got %q.`, sdk.String(cfg, "method"))
	}
	return d, nil
}

// newDoHTransport returns the HTTP transport of one DoH server: it connects
// to addr whatever the URL's host, verifies the certificate against the
// URL's host, speaks HTTP/2 when the server offers it, and keeps the
// connection for the next queries, as a DoH client does.
func newDoHTransport(addr, host string, roots *x509.CertPool) *http.Transport {
	var nd net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return nd.DialContext(ctx, network, addr)
		},
		TLSClientConfig:        &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
}

// dohTrace records what net/http did for one query. Its hooks may run on
// the transport's own goroutines, also after the query gave up, hence the
// lock.
type dohTrace struct {
	mu                  sync.Mutex
	connStart, tlsStart time.Time
	connect, tls        time.Duration
	gotConn             time.Time
	reused              bool
}

func (d *dohTrace) hooks() *httptrace.ClientTrace {
	at := func(f func(now time.Time)) {
		now := time.Now()
		d.mu.Lock()
		defer d.mu.Unlock()
		f(now)
	}
	return &httptrace.ClientTrace{
		ConnectStart:      func(string, string) { at(func(now time.Time) { d.connStart = now }) },
		ConnectDone:       func(string, string, error) { at(func(now time.Time) { d.connect = now.Sub(d.connStart) }) },
		TLSHandshakeStart: func() { at(func(now time.Time) { d.tlsStart = now }) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { at(func(now time.Time) { d.tls = now.Sub(d.tlsStart) }) },
		GotConn: func(info httptrace.GotConnInfo) {
			at(func(now time.Time) { d.gotConn, d.reused = now, info.Reused })
		},
	}
}

// fill copies the trace into t: the connection's setup (zero when the
// query had none of its own), whether it was reused, and the round trip
// from getting the connection until now (zero when it got none).
func (d *dohTrace) fill(t *try) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	t.connect, t.tls, t.reused = d.connect, d.tls, d.reused
	if d.reused {
		// net/http may dial for this request and then hand it an idle
		// connection that came free first; the dial's hooks fired all the
		// same, but its time is not this query's.
		t.connect, t.tls = 0, 0
	}
	if !d.gotConn.IsZero() {
		t.rtt = now.Sub(d.gotConn)
	}
}

// httpStatusError is a DoH server's answer with a status other than 200.
type httpStatusError struct{ status string }

func (e *httpStatusError) Error() string { return "HTTP " + e.status }

// exchangeDoH sends m to s as an RFC 8484 request and reads the reply,
// by deadline; canceling ctx ends it at once. The query's ID is 0 (§4.1). A
// status other than 200 is an error without a reply; a 200 whose body is
// not one DNS message answering m is returned with its error.
func (r *Resolver) exchangeDoH(ctx context.Context, t *try, deadline time.Time, m *dns.Msg, s server) (*reply, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	m.Id = 0
	q, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack the query: %w", err)
	}
	u := *r.doh.url
	var body io.Reader
	if r.doh.method == http.MethodGet {
		v := u.Query()
		v.Set("dns", base64.RawURLEncoding.EncodeToString(q))
		u.RawQuery = v.Encode()
	} else {
		body = bytes.NewReader(q)
	}
	tr := &dohTrace{}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr.hooks()), r.doh.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Accept", dohContentType)
	if body != nil {
		req.Header.Set("Content-Type", dohContentType)
	}
	resp, err := s.doh.RoundTrip(req)
	if err != nil {
		tr.fill(t)
		return nil, err
	}
	defer resp.Body.Close()
	t.status, t.proto = resp.StatusCode, resp.Proto
	if resp.StatusCode != http.StatusOK {
		tr.fill(t)
		return nil, &httpStatusError{resp.Status}
	}
	p, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
	tr.fill(t)
	if err != nil {
		return nil, fmt.Errorf("read the reply: %w", err)
	}
	rep := &reply{server: s.addr, transport: t.transport, msg: new(dns.Msg), size: len(p), rtt: t.rtt, doh: t}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case ct != dohContentType:
		err = fmt.Errorf("content type %q, want %s", resp.Header.Get("Content-Type"), dohContentType)
	case len(p) > dns.MaxMsgSize:
		err = fmt.Errorf("reply over %d bytes", dns.MaxMsgSize)
	default:
		err = rep.msg.Unpack(p)
	}
	if err == nil && rep.msg.Id != m.Id {
		err = dns.ErrId
	}
	if err == nil {
		err = sameQuestion(rep.msg, m)
	}
	return rep, err
}

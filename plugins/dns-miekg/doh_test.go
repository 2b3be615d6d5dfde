package dnsmiekg

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// dohResolver returns a resolver of A records over DoH at url on server
// addr, trusting the test CA.
func dohResolver(t *testing.T, addr, url, method, timeout string) *Resolver {
	t.Helper()
	r := newResolver(t, map[string]cty.Value{"servers": strs(addr), "transport": cty.StringVal("doh"),
		"url": cty.StringVal(url), "method": cty.StringVal(method), "ca_file": cty.StringVal(dotCAFile),
		"query_types": strs("A"), "timeout": cty.StringVal(timeout)})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestDoH checks what a DoH query reports of its connection against
// unbound: the first query of a resolver opens one (connect and TLS inside
// the phase, over HTTP/2), the next one reuses it and reports no setup.
func TestDoH(t *testing.T) {
	u := startUnbound(t)
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			r := dohResolver(t, u.dohAddr, u.dohURL(), method, "2s")
			for i, reused := range []bool{false, true} {
				resp, ph := resolve(t, t.Context(), r, "api.probe.test")
				if resp.Failure != nil {
					t.Fatalf("query %d: %v", i, resp.Failure)
				}
				a := ph.Attrs
				if a["reused"] != reused || a["http_version"] != "HTTP/2.0" || a["server"] != u.dohAddr || a["url"] != u.dohURL() {
					t.Errorf("query %d: attrs %v, want reused %v over HTTP/2.0 from %s", i, a, reused, u.dohAddr)
				}
				tr := tries(ph)
				if len(tr) != 1 || tr[0]["reused"] != reused || tr[0]["status"] != 200 {
					t.Fatalf("query %d: tries %v, want one with reused %v and status 200", i, tr, reused)
				}
				connect, handshake, rtt := msDuration(tr[0]["connect_ms"]), msDuration(tr[0]["tls_ms"]), msDuration(tr[0]["rtt_ms"])
				if reused {
					if connect != 0 || handshake != 0 || a["connect_ms"] != nil {
						t.Errorf("reused connection with connect %v, tls %v, attrs %v", connect, handshake, a)
					}
				} else if connect <= 0 || handshake <= 0 || a["connect_ms"] != tr[0]["connect_ms"] || a["tls_ms"] != tr[0]["tls_ms"] {
					t.Errorf("new connection with connect %v, tls %v, attrs %v; want both > 0 and in the attrs", connect, handshake, a)
				}
				t.Logf("query %d: reused %v, connect %v, tls %v, rtt %v, resolve phase %v", i, reused, connect, handshake, rtt, ph.Duration)
				if sum := connect + handshake + rtt; rtt <= 0 || sum > ph.Duration {
					t.Errorf("connect %v + tls %v + rtt %v = %v, want within the phase's %v", connect, handshake, rtt, sum, ph.Duration)
				}
			}
		})
	}
}

// startHostileDoH starts an HTTP/2 server over TLS with the test CA's
// certificate, answering every request with h.
func startHostileDoH(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{Certificates: []tls.Certificate{dotCert(t)}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// TestDoHHostile checks that a DoH server that answers an HTTP error, a
// body that is no DNS message, or nothing, or that speaks no TLS, ends the
// resolution in its class within the timeout.
func TestDoHHostile(t *testing.T) {
	const timeout = 300 * time.Millisecond
	// answer replies to the query in r, edited by edit.
	answer := func(edit func(m *dns.Msg)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			q, _ := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
			m := new(dns.Msg)
			if err := m.Unpack(q); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			m.Response = true
			edit(m)
			b, _ := m.Pack()
			w.Header().Set("Content-Type", dohContentType)
			_, _ = w.Write(b)
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		class   sdk.Class
		message string
		min     time.Duration // of the phase
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			sdk.ClassDNSError, "HTTP 500 Internal Server Error", 0},
		{"429", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "slow down", http.StatusTooManyRequests) },
			sdk.ClassDNSError, "HTTP 429 Too Many Requests", 0},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			sdk.ClassDNSError, "HTTP 302 Found", 0},
		{"garbage body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", dohContentType)
			_, _ = w.Write([]byte("\x00\x01garbage, not a DNS message"))
		}, sdk.ClassDNSMalformed, "malformed reply", 0},
		{"html", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html>hello</html>") },
			sdk.ClassDNSMalformed, `content type "text/html; charset=utf-8"`, 0},
		{"nonzero id", answer(func(m *dns.Msg) { m.Id = 7 }), sdk.ClassDNSMalformed, "id mismatch", 0},
		{"another question", answer(func(m *dns.Msg) { m.Question[0].Name = "other.test." }), sdk.ClassDNSMalformed,
			"reply to another question", 0},
		{"never answers", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			sdk.ClassDNSTimeout, "deadline exceeded", timeout},
		{"headers then silence", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", dohContentType)
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, sdk.ClassDNSTimeout, "deadline exceeded", timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startHostileDoH(t, tt.handler)
			addr := s.Listener.Addr().String()
			_, port, _ := net.SplitHostPort(addr)
			r := dohResolver(t, addr, "https://dns.probe.test:"+port+"/dns-query", "GET", timeout.String())
			resp, ph := resolve(t, t.Context(), r, "hostile.test")
			if resp.Failure == nil || resp.Failure.Class != tt.class || !strings.Contains(resp.Failure.Message, tt.message) {
				t.Errorf("failure %+v, want %s saying %q", resp.Failure, tt.class, tt.message)
			}
			within(t, "the resolve phase", ph.Duration, tt.min, 150*time.Millisecond)
		})
	}

	// A server that speaks no TLS but sends garbage, and one that says
	// nothing at all.
	for _, tt := range []struct {
		name    string
		serve   func(net.Conn)
		class   sdk.Class
		message string
		min     time.Duration
	}{
		{"garbage instead of TLS", func(c net.Conn) { _, _ = c.Write([]byte("garbage garbage garbage\r\n\r\n")) }, sdk.ClassDNSError, "tls", 0},
		{"silent TCP", func(net.Conn) {}, sdk.ClassDNSTimeout, "", timeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					tt.serve(c)
					t.Cleanup(func() { c.Close() })
				}
			}()
			r := dohResolver(t, ln.Addr().String(), "https://dns.probe.test/dns-query", "POST", timeout.String())
			resp, ph := resolve(t, t.Context(), r, "hostile.test")
			if resp.Failure == nil || resp.Failure.Class != tt.class || !strings.Contains(resp.Failure.Message, tt.message) {
				t.Errorf("failure %+v, want %s saying %q", resp.Failure, tt.class, tt.message)
			}
			within(t, "the resolve phase", ph.Duration, tt.min, 150*time.Millisecond)
		})
	}
}

// TestDoHConfig checks the attributes of transport "doh".
func TestDoHConfig(t *testing.T) {
	doh := cty.StringVal("doh")
	one := strs("192.0.2.1")
	tests := []struct {
		name   string
		values map[string]cty.Value
		attr   string // of the expected *sdk.AttrError; "" for none
		server string
	}{
		{"port 443", map[string]cty.Value{"servers": one, "transport": doh, "url": cty.StringVal("https://dns.example/dns-query")}, "", "192.0.2.1:443"},
		{"no url", map[string]cty.Value{"servers": one, "transport": doh}, "url", ""},
		{"http url", map[string]cty.Value{"servers": one, "transport": doh, "url": cty.StringVal("http://dns.example/dns-query")}, "url", ""},
		{"no host", map[string]cty.Value{"servers": one, "transport": doh, "url": cty.StringVal("https:///dns-query")}, "url", ""},
		{"method", map[string]cty.Value{"servers": one, "transport": doh, "url": cty.StringVal("https://dns.example/"), "method": cty.StringVal("PUT")}, "method", ""},
		{"server_name", map[string]cty.Value{"servers": one, "transport": doh, "url": cty.StringVal("https://dns.example/"), "server_name": cty.StringVal("x")}, "server_name", ""},
		{"url over udp", map[string]cty.Value{"servers": one, "url": cty.StringVal("https://dns.example/")}, "url", ""},
		{"method over tls", map[string]cty.Value{"servers": one, "transport": cty.StringVal("tls"), "method": cty.StringVal("GET")}, "method", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Plugin().ResolverSchema.Config(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			r, err := New(cfg)
			if tt.attr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.server, r.servers[0].addr); diff != "" {
					t.Errorf("server (-want +got):\n%s", diff)
				}
				return
			}
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tt.attr {
				t.Fatalf("New() error = %v, want an *sdk.AttrError for %q", err, tt.attr)
			}
		})
	}
}

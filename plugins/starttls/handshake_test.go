package starttls

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/probe-dev/probe/internal/leakcheck"
	"github.com/probe-dev/probe/internal/plugintest"
)

// servers are the real servers, started once for the package by the first
// test that needs them (not by a fuzzing worker), with a certificate for
// mail.probe.test from ca.
var servers struct {
	once     sync.Once
	err      error
	ca       *lab.CA
	exim     *daemon.Exim
	dovecot  *daemon.Dovecot
	postgres *daemon.Postgres
	started  []interface{ Close() error }
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range servers.started {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// start starts the servers the first time it is called.
func start(t *testing.T) {
	t.Helper()
	servers.once.Do(func() {
		s := &servers
		if s.ca, s.err = lab.NewCA("starttls test CA"); s.err != nil {
			return
		}
		now := time.Now()
		cert, err := s.ca.Issue([]string{"mail.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(24*time.Hour))
		if s.err = err; err != nil {
			return
		}
		if s.exim, s.err = daemon.StartExim(cert); s.err != nil {
			return
		}
		s.started = append(s.started, s.exim)
		if s.dovecot, s.err = daemon.StartDovecot(cert); s.err != nil {
			return
		}
		s.started = append(s.started, s.dovecot)
		if s.postgres, s.err = daemon.StartPostgres(cert); s.err != nil {
			return
		}
		s.started = append(s.started, s.postgres)
	})
	if servers.err != nil {
		t.Fatal(servers.err)
	}
}

// upgrade dials addr and runs a starttls handshake configured by values
// over it. It returns the response and the connection, closed when the
// test ends.
func upgrade(t *testing.T, ctx context.Context, values map[string]cty.Value, addr netip.AddrPort) (*sdk.HandshakeResponse, net.Conn) {
	t.Helper()
	h, err := plugintest.Handshaker(t, Plugin(), values)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: "mail.probe.test", Address: addr})
	if err != nil {
		t.Fatalf("Handshake returned a Go error %v, want a result", err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one starttls phase", resp.Phases)
	}
	if resp.Conn != nil {
		t.Errorf("Conn = %v, want nil: the connection as it is", resp.Conn)
	}
	return resp, conn
}

func proto(name string) map[string]cty.Value {
	return map[string]cty.Value{"protocol": cty.StringVal(name)}
}

// TestUpgrade upgrades a connection to each real server, then runs a TLS
// handshake over it: the server's certificate from the test CA verifies.
func TestUpgrade(t *testing.T) {
	start(t)
	exim, dovecot, pg := servers.exim, servers.dovecot, servers.postgres
	tests := []struct {
		name  string
		proto string
		addr  netip.AddrPort
		attrs map[string]any // without greeting_ms
	}{
		{"exim smtp", "smtp", exim.Addr, map[string]any{"protocol": "smtp", "reply": "220 TLS go ahead"}},
		{"dovecot imap", "imap", dovecot.IMAP, map[string]any{"protocol": "imap", "reply": "a1 OK Begin TLS negotiation now.",
			"greeting": "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready."}},
		{"dovecot pop3", "pop3", dovecot.POP3, map[string]any{"protocol": "pop3", "reply": "+OK Begin TLS negotiation now.",
			"greeting": "+OK Dovecot (Debian) ready."}},
		{"postgres", "postgres", pg.Addr, map[string]any{"protocol": "postgres", "reply": "S"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, conn := upgrade(t, context.Background(), proto(tc.proto), tc.addr)
			if resp.Failure != nil {
				t.Fatalf("Failure = %+v, want none", resp.Failure)
			}
			p := resp.Phases[0]
			if !p.OK || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phase ok=%v duration=%v, want ok within 1s", p.OK, p.Duration)
			}
			attrs := map[string]any{}
			for k, v := range p.Attrs {
				if k != "greeting_ms" {
					attrs[k] = v
				}
			}
			if tc.proto == "smtp" { // the greeting names the date
				if g, _ := attrs["greeting"].(string); !strings.HasPrefix(g, "220 mail.probe.test ESMTP Exim 4.") {
					t.Errorf("greeting %q, want exim's", g)
				}
				delete(attrs, "greeting")
			}
			if diff := cmp.Diff(tc.attrs, attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			if tc.proto != "postgres" { // the server speaks first: its greeting came within the phase
				if ms, _ := p.Attrs["greeting_ms"].(float64); ms <= 0 || ms >= sdk.Milliseconds(p.Duration) {
					t.Errorf("greeting_ms = %v, want in (0, %v)", p.Attrs["greeting_ms"], sdk.Milliseconds(p.Duration))
				}
			}
			tc := tls.Client(conn, &tls.Config{ServerName: "mail.probe.test", RootCAs: servers.ca.Pool()})
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS handshake after the upgrade: %v", err)
			}
		})
	}
}

// TestWrongServer points each protocol at a real server of another: a
// protocol failure, or a timeout when the server waits for the client to
// speak first, never a hang.
func TestWrongServer(t *testing.T) {
	start(t)
	exim, dovecot, pg := servers.exim, servers.dovecot, servers.postgres
	tests := []struct {
		proto string
		addr  netip.AddrPort
		class sdk.Class
	}{
		{"smtp", dovecot.IMAP, ClassProtocol},
		{"imap", exim.Addr, ClassProtocol},
		{"pop3", dovecot.IMAP, ClassProtocol},
		{"postgres", exim.Addr, ClassProtocol},
		{"smtp", pg.Addr, ClassTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.proto+" at "+tc.addr.String(), func(t *testing.T) {
			values := proto(tc.proto)
			values["timeout"] = cty.StringVal(timeoutFor(tc.class))
			resp, _ := upgrade(t, context.Background(), values, tc.addr)
			if resp.Failure == nil || resp.Failure.Class != tc.class {
				t.Fatalf("Failure = %+v, want class %s", resp.Failure, tc.class)
			}
			if d := resp.Phases[0].Duration; d > time.Second {
				t.Errorf("phase lasted %v, want it within 1s", d)
			}
		})
	}
}

// TestHostile runs each protocol against scripted servers that send what a
// broken or hostile server would, all of it at once: the client's commands
// find their replies waiting.
func TestHostile(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	const ehlo = "220 mx ESMTP\r\n250-mx\r\n250-SIZE 1000\r\n"
	tests := []struct {
		name, proto, script string
		class               sdk.Class
	}{
		{"smtp without STARTTLS", "smtp", ehlo + "250 8BITMIME\r\n", ClassUnsupported},
		{"smtp STARTTLS refused", "smtp", ehlo + "250 STARTTLS\r\n454 4.7.0 TLS not available\r\n", ClassRefused},
		{"smtp greeting 554", "smtp", "554 no service\r\n", ClassRefused},
		{"smtp injection", "smtp", ehlo + "250 STARTTLS\r\n220 go ahead\r\n250 injected\r\n", ClassProtocol},
		{"smtp line without end", "smtp", "220 " + strings.Repeat("x", 100<<10), ClassProtocol},
		{"smtp endless continuation", "smtp", strings.Repeat("220-more\r\n", 10000), ClassProtocol},
		{"smtp garbage", "smtp", "\x16\x03\x01\x00\x05hello\r\n", ClassProtocol},
		{"imap BAD", "imap", "* OK ready\r\na1 BAD unknown command\r\n", ClassUnsupported},
		{"imap NO", "imap", "* OK ready\r\n* BYE going\r\na1 NO not now\r\n", ClassRefused},
		{"imap no STARTTLS capability", "imap", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n", ClassUnsupported},
		{"imap PREAUTH", "imap", "* PREAUTH welcome\r\n", ClassUnsupported},
		{"imap injection", "imap", "* OK ready\r\na1 OK begin\r\n* OK injected\r\n", ClassProtocol},
		{"imap other tag", "imap", "* OK ready\r\nb7 OK begin\r\n", ClassProtocol},
		{"pop3 -ERR", "pop3", "+OK ready\r\n-ERR no TLS\r\n", ClassUnsupported},
		{"pop3 greeting -ERR", "pop3", "-ERR busy\r\n", ClassRefused},
		{"pop3 silent after its greeting", "pop3", "+OK ready\r\n", ClassTimeout},
		{"postgres N", "postgres", "N", ClassUnsupported},
		{"postgres E", "postgres", "EFATAL", ClassProtocol},
		{"postgres injection", "postgres", "SX", ClassProtocol},
		{"postgres silent", "postgres", "", ClassTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := lab.StartTCP(tc.script)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			values := proto(tc.proto)
			values["timeout"] = cty.StringVal(timeoutFor(tc.class))
			resp, _ := upgrade(t, context.Background(), values, srv.Addr)
			if resp.Failure == nil || resp.Failure.Class != tc.class || resp.Failure.Phase != Phase {
				t.Fatalf("Failure = %+v, want class %s", resp.Failure, tc.class)
			}
			p := resp.Phases[0]
			if p.OK || p.Duration > time.Second {
				t.Errorf("phase ok=%v lasted %v, want failed within 1s", p.OK, p.Duration)
			}
			if g, _ := p.Attrs["greeting"].(string); strings.ContainsAny(g, "\x00\x16\r\n") || len(g) > 203 {
				t.Errorf("greeting %q: want it sanitized, at most 200 bytes and an ellipsis", g)
			}
		})
	}
}

// timeoutFor returns the handshake's timeout for a case that must end in
// class: short when the timeout is what it waits for, ample otherwise, so
// that a loaded machine does not turn a protocol failure into a timeout.
func timeoutFor(class sdk.Class) string {
	if class == ClassTimeout {
		return "200ms"
	}
	return "2s"
}

func TestCanceled(t *testing.T) {
	start(t)
	exim := servers.exim
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, _ := upgrade(t, ctx, proto("smtp"), exim.Addr)
	if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
		t.Fatalf("Failure = %+v, want canceled", resp.Failure)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	str := cty.StringVal
	tests := []struct {
		name   string
		values map[string]cty.Value
		attr   string
	}{
		{"unknown protocol", map[string]cty.Value{"protocol": str("ftp")}, "protocol"},
		{"protocol in capitals", map[string]cty.Value{"protocol": str("SMTP")}, "protocol"},
		{"ehlo_name for imap", map[string]cty.Value{"protocol": str("imap"), "ehlo_name": str("probe.example")}, "ehlo_name"},
		{"ehlo_name with a space", map[string]cty.Value{"protocol": str("smtp"), "ehlo_name": str("a b")}, "ehlo_name"},
		{"timeout garbage", map[string]cty.Value{"protocol": str("smtp"), "timeout": str("soon")}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugintest.Handshaker(t, Plugin(), tc.values)
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tc.attr {
				t.Errorf("New(%v) = %v, want an *sdk.AttrError for %s", tc.values, err, tc.attr)
			}
		})
	}
}

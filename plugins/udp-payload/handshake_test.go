package udppayload

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/probe-dev/probe/internal/plugintest"
)

// unbound is NLnet Labs' resolver, started once for the package.
var unbound *daemon.Unbound

func TestMain(m *testing.M) {
	u, err := daemon.StartUnbound(daemon.UnboundConfig{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	unbound = u
	code := m.Run()
	if err := u.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// dnsQuery returns a DNS query with ID 0x1234 for name's A record, in
// hexadecimal.
func dnsQuery(t *testing.T, name string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = 0x1234
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// exchange connects a UDP socket to addr and runs a handshake configured by
// values over it.
func exchange(t *testing.T, ctx context.Context, values map[string]cty.Value, addr netip.AddrPort) *sdk.HandshakeResponse {
	t.Helper()
	h, err := plugintest.Handshaker(t, Plugin(), values)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: "127.0.0.1", Address: addr})
	if err != nil {
		t.Fatalf("Handshake returned a Go error %v, want a result", err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one udp phase", resp.Phases)
	}
	return resp
}

// TestDNSQuery sends a DNS query to unbound as the payload: the reply is
// unbound's answer, whole in reply_hex.
func TestDNSQuery(t *testing.T) {
	query := dnsQuery(t, "api.probe.test.")
	str := cty.StringVal
	tests := []struct {
		name   string
		values map[string]cty.Value
		class  sdk.Class
	}{
		{"any reply", map[string]cty.Value{"payload_hex": str(query)}, ""},
		{"expect the query's ID", map[string]cty.Value{"payload_hex": str(query), "expect": str(`^\x12\x34`)}, ""},
		// The flags' first byte has QR set: 0x80 and above.
		{"expect a byte that is not UTF-8", map[string]cty.Value{"payload_hex": str(query), "expect": str(`^\x12\x34[\x80-\xff]`)}, ""},
		{"hex with spaces", map[string]cty.Value{"payload_hex": str(query[:8] + " " + query[8:]), "expect": str(`^\x12\x34`)}, ""},
		{"expect another ID", map[string]cty.Value{"payload_hex": str(query), "expect": str(`^\x00\x00`)}, ClassReplyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := exchange(t, context.Background(), tc.values, unbound.Addr)
			p := resp.Phases[0]
			if tc.class == "" && resp.Failure != nil || tc.class != "" && (resp.Failure == nil || resp.Failure.Class != tc.class) {
				t.Fatalf("Failure = %+v, want class %q", resp.Failure, tc.class)
			}
			if p.OK != (tc.class == "") || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phase ok=%v duration=%v, want ok=%v within 1s", p.OK, p.Duration, tc.class == "")
			}
			if p.Attrs["request_bytes"] != len(query)/2 {
				t.Errorf("request_bytes = %v, want %d", p.Attrs["request_bytes"], len(query)/2)
			}
			// The answer (48 bytes) is whole in reply_hex.
			b, err := hex.DecodeString(p.Attrs["reply_hex"].(string))
			if err != nil || p.Attrs["reply_bytes"] != len(b) {
				t.Fatalf("reply_hex %v of reply_bytes %v: %v", p.Attrs["reply_hex"], p.Attrs["reply_bytes"], err)
			}
			var m dns.Msg
			if err := m.Unpack(b); err != nil {
				t.Fatalf("unbound's reply does not parse: %v", err)
			}
			if m.Id != 0x1234 || !m.Response || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 ||
				m.Answer[0].(*dns.A).A.String() != "127.0.0.1" {
				t.Errorf("reply %v, want the answer 127.0.0.1 to query 0x1234", &m)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	// A closed UDP port: the kernel answers with ICMP port unreachable.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	// A socket that reads and never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	query := dnsQuery(t, "api.probe.test.")
	tests := []struct {
		name     string
		ctx      context.Context
		addr     netip.AddrPort
		class    sdk.Class
		min, max time.Duration
	}{
		// Refused at once, not at the timeout: the class tells them apart.
		{"closed port", context.Background(), closed, ClassRefused, 0, time.Second},
		{"silent", context.Background(), netip.MustParseAddrPort(silent.LocalAddr().String()), ClassTimeout, 95 * time.Millisecond, time.Second},
		{"canceled", canceled, unbound.Addr, sdk.ClassCanceled, 0, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A short timeout only where it is the outcome.
			timeout := "2s"
			if tc.class == ClassTimeout {
				timeout = "100ms"
			}
			values := map[string]cty.Value{"payload_hex": cty.StringVal(query), "timeout": cty.StringVal(timeout)}
			resp := exchange(t, tc.ctx, values, tc.addr)
			if resp.Failure == nil || resp.Failure.Class != tc.class || resp.Failure.Phase != Phase {
				t.Fatalf("Failure = %+v, want class %s", resp.Failure, tc.class)
			}
			if d := resp.Phases[0].Duration; resp.Phases[0].OK || d < tc.min || d > tc.max {
				t.Errorf("phase ok=%v lasted %v, want failed in [%v, %v]", resp.Phases[0].OK, d, tc.min, tc.max)
			}
		})
	}
}

// TestTextPayload sends a text payload to a UDP echo: the same bytes come
// back.
func TestTextPayload(t *testing.T) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := echo.ReadFrom(buf)
		if err == nil {
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	resp := exchange(t, context.Background(), map[string]cty.Value{"payload": cty.StringVal("status\n"), "expect": cty.StringVal(`^status\n$`)},
		netip.MustParseAddrPort(echo.LocalAddr().String()))
	if resp.Failure != nil || resp.Phases[0].Attrs["reply_hex"] != hex.EncodeToString([]byte("status\n")) {
		t.Errorf("Failure %+v, attrs %v; want the text echoed", resp.Failure, resp.Phases[0].Attrs)
	}
}

// TestNotUDP runs the handshake over a TCP connection: a Go error that
// names the dialer to use.
func TestNotUDP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := plugintest.Handshaker(t, Plugin(), map[string]cty.Value{"payload": cty.StringVal("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Handshake(context.Background(), &sdk.HandshakeRequest{Conn: conn, Address: netip.MustParseAddrPort(ln.Addr().String())})
	if err == nil || !strings.Contains(err.Error(), "dial-udp") {
		t.Errorf("Handshake over TCP: %v, want an error naming dial-udp", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	str := cty.StringVal
	tests := []struct {
		name   string
		values map[string]cty.Value
		attr   string
	}{
		{"no payload", nil, "payload"},
		{"two payloads", map[string]cty.Value{"payload": str("a"), "payload_hex": str("61")}, "payload_hex"},
		{"odd hex", map[string]cty.Value{"payload_hex": str("123")}, "payload_hex"},
		{"not hex", map[string]cty.Value{"payload_hex": str("zz")}, "payload_hex"},
		{"too large", map[string]cty.Value{"payload": str(strings.Repeat("x", 65536))}, "payload"},
		{"bad expect", map[string]cty.Value{"payload": str("a"), "expect": str("(")}, "expect"},
		{"timeout garbage", map[string]cty.Value{"payload": str("a"), "timeout": str("soon")}, "timeout"},
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

package dialsocks5

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/probe-dev/probe/internal/plugintest"
)

// newDialer builds a Dialer through the plugin's schema, as the core does.
func newDialer(t *testing.T, values map[string]cty.Value) *Dialer {
	t.Helper()
	cfg, err := Plugin().DialerSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMicrosocks dials through microsocks, a SOCKS5 proxy we did not
// write: the tunnel reaches the target, or the failure is classed.
func TestMicrosocks(t *testing.T) {
	open := daemon.ProxyFor(t)(daemon.StartMicrosocks("", ""))
	authed := daemon.ProxyFor(t)(daemon.StartMicrosocks("probe", "s3cret-pass"))
	echo, closed := plugintest.LineEcho(t, ""), lab.Refused(t)
	tests := []struct {
		name   string
		values map[string]cty.Value
		host   string
		addr   netip.AddrPort
		class  sdk.Class
		target string // the proxy phase's target attr
	}{
		{name: "local", values: map[string]cty.Value{"proxy": cty.StringVal(open)}, host: "echo.test", addr: echo, target: echo.String()},
		{name: "remote", values: map[string]cty.Value{"proxy": cty.StringVal(open), "resolve": cty.StringVal("remote")},
			host: "127.0.0.1", addr: echo, target: echo.String()},
		{name: "remote name", values: map[string]cty.Value{"proxy": cty.StringVal(open), "resolve": cty.StringVal("remote")},
			host: "localhost", addr: echo, target: "localhost:" + itoa(echo.Port())},
		{name: "auth", values: map[string]cty.Value{"proxy": cty.StringVal(authed), "username": cty.StringVal("probe"), "password": cty.StringVal("s3cret-pass")},
			host: "echo.test", addr: echo, target: echo.String()},
		{name: "wrong password", values: map[string]cty.Value{"proxy": cty.StringVal(authed), "username": cty.StringVal("probe"), "password": cty.StringVal("nope")},
			host: "echo.test", addr: echo, class: ClassAuth, target: echo.String()},
		{name: "no credentials", values: map[string]cty.Value{"proxy": cty.StringVal(authed)}, host: "echo.test", addr: echo, class: ClassAuth, target: echo.String()},
		{name: "target refused", values: map[string]cty.Value{"proxy": cty.StringVal(open)}, host: "closed.test", addr: closed,
			class: ClassTargetUnreachable, target: closed.String()},
		{name: "remote name unknown", values: map[string]cty.Value{"proxy": cty.StringVal(open), "resolve": cty.StringVal("remote")},
			host: "nosuch.invalid", addr: echo, class: ClassError, target: "nosuch.invalid:" + itoa(echo.Port())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDialer(t, tt.values)
			resp, err := d.Dial(t.Context(), &sdk.DialRequest{Address: tt.addr, Host: tt.host})
			if err != nil {
				t.Fatal(err)
			}
			plugintest.ProxyPhases(t, resp, tt.values["proxy"].AsString(), tt.target)
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
				if strings.Contains(resp.Failure.Message, "s3cret-pass") {
					t.Errorf("the failure %q shows the password", resp.Failure.Message)
				}
			}
			if class != tt.class {
				t.Fatalf("class %q, want %q (failure %+v)", class, tt.class, resp.Failure)
			}
			if resp.Failure != nil {
				return
			}
			defer resp.Conn.Close()
			t.Logf("connect %v, proxy %v", resp.Phases[0].Duration, resp.Phases[1].Duration)
			if _, ok := resp.Conn.(*net.TCPConn); !ok {
				t.Errorf("conn is a %T, want the kernel socket to the proxy", resp.Conn)
			}
			if _, err := resp.Conn.Write([]byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			_ = resp.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(resp.Conn).ReadString('\n')
			if err != nil || line != "echo hello\n" {
				t.Errorf("through the tunnel: %q, %v; want the echo", line, err)
			}
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestHostileProxy checks that a proxy that does not answer, answers
// garbage, or hangs up ends in its class within the timeout.
func TestHostileProxy(t *testing.T) {
	const timeout = 300 * time.Millisecond
	echo := plugintest.LineEcho(t, "")
	proxies := []plugintest.HostileProxy{
		{Name: "silent", Serve: func(net.Conn) {}, Class: ClassTimeout, Min: timeout - 20*time.Millisecond, Max: timeout + 150*time.Millisecond},
		{Name: "garbage", Serve: func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, Class: ClassProtocol, Min: 0, Max: 150 * time.Millisecond},
		{Name: "hangs up", Serve: func(c net.Conn) { c.Close() }, Class: ClassProtocol, Min: 0, Max: 150 * time.Millisecond},
		{Name: "rejects every method", Serve: func(c net.Conn) { _, _ = c.Write([]byte{5, 0xff}) }, Class: ClassAuth, Min: 0, Max: 150 * time.Millisecond},
		{Name: "silent after the greeting", Serve: func(c net.Conn) { _, _ = c.Write([]byte{5, 0}) }, Class: ClassTimeout, Min: timeout - 20*time.Millisecond, Max: timeout + 150*time.Millisecond},
		{Name: "not allowed", Serve: func(c net.Conn) {
			_, _ = c.Write([]byte{5, 0})
			buf := make([]byte, 10)
			_, _ = c.Read(buf) // the request
			_, _ = c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0})
		}, Class: ClassRefused, Min: 0, Max: 150 * time.Millisecond},
	}
	plugintest.RunHostileProxies(t, proxies, echo, func(t *testing.T, addr string, _ plugintest.HostileProxy) sdk.Dialer {
		return newDialer(t, map[string]cty.Value{"proxy": cty.StringVal(addr), "timeout": cty.StringVal(timeout.String())})
	})
	t.Run("proxy refused", func(t *testing.T) {
		d := newDialer(t, map[string]cty.Value{"proxy": cty.StringVal(lab.Refused(t).String())})
		resp, _ := d.Dial(context.Background(), &sdk.DialRequest{Address: echo, Host: "echo.test"})
		if resp.Failure == nil || resp.Failure.Class != sdk.ClassTCPRefused || resp.Failure.Phase != sdk.PhaseConnect {
			t.Errorf("failure %+v, want tcp.refused in connect", resp.Failure)
		}
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]cty.Value
		proxy  string
		attr   string
	}{
		{"default port", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1")}, "192.0.2.1:1080", ""},
		{"v6", map[string]cty.Value{"proxy": cty.StringVal("[2001:db8::1]:9050")}, "[2001:db8::1]:9050", ""},
		{"name", map[string]cty.Value{"proxy": cty.StringVal("proxy.example:1080")}, "", "proxy"},
		{"port 0", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1:0")}, "", "proxy"},
		{"password alone", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1"), "password": cty.StringVal("x")}, "", "password"},
		{"long user", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1"), "username": cty.StringVal(strings.Repeat("u", 256))}, "", "username"},
		{"resolve", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1"), "resolve": cty.StringVal("proxy")}, "", "resolve"},
		{"timeout", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1"), "timeout": cty.StringVal("soon")}, "", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Plugin().DialerSchema.Config(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(cfg)
			if tt.attr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.proxy, d.proxy.String()); diff != "" {
					t.Errorf("proxy (-want +got):\n%s", diff)
				}
				return
			}
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tt.attr {
				t.Fatalf("New() error = %v, want an *sdk.AttrError for %q", err, tt.attr)
			}
		})
	}
}

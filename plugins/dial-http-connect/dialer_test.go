package dialhttpconnect

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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

// tlsFront starts a TLS listener that hands each connection's bytes to
// backend: an https proxy made of tinyproxy. It returns its address and
// the CA file to trust.
func tlsFront(t *testing.T, backend string) (string, string) {
	t.Helper()
	ca, err := lab.NewCA("dial-http-connect test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"proxy.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WritePEM(caFile); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
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
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return ln.Addr().String(), caFile
}

// TestTinyproxy dials through tinyproxy, an HTTP proxy we did not write:
// the tunnel reaches the target (what the target says first included), or
// the failure is classed.
func TestTinyproxy(t *testing.T) {
	open := daemon.ProxyFor(t)(daemon.StartTinyproxy(""))
	authed := daemon.ProxyFor(t)(daemon.StartTinyproxy("BasicAuth probe s3cret-pass"))
	strict := daemon.ProxyFor(t)(daemon.StartTinyproxy("ConnectPort 443"))
	front, caFile := tlsFront(t, open)
	echo := plugintest.LineEcho(t, "hello\n")
	closed := lab.Refused(t)
	httpURL := func(a string) cty.Value { return cty.StringVal("http://" + a) }
	tests := []struct {
		name   string
		values map[string]cty.Value
		host   string
		addr   netip.AddrPort
		class  sdk.Class
		status int
		target string
	}{
		{name: "local", values: map[string]cty.Value{"proxy": httpURL(open)}, host: "echo.test", addr: echo, status: 200, target: echo.String()},
		{name: "remote name", values: map[string]cty.Value{"proxy": httpURL(open), "resolve": cty.StringVal("remote")}, host: "localhost", addr: echo,
			status: 200, target: "localhost:" + strconv.Itoa(int(echo.Port()))},
		{name: "auth", values: map[string]cty.Value{"proxy": httpURL(authed), "username": cty.StringVal("probe"), "password": cty.StringVal("s3cret-pass")},
			host: "echo.test", addr: echo, status: 200, target: echo.String()},
		{name: "wrong password", values: map[string]cty.Value{"proxy": httpURL(authed), "username": cty.StringVal("probe"), "password": cty.StringVal("nope")},
			host: "echo.test", addr: echo, class: ClassAuth, status: 401, target: echo.String()}, // tinyproxy's answer to a wrong password
		{name: "no credentials", values: map[string]cty.Value{"proxy": httpURL(authed)}, host: "echo.test", addr: echo, class: ClassAuth, status: 407, target: echo.String()},
		{name: "port not allowed", values: map[string]cty.Value{"proxy": httpURL(strict)}, host: "echo.test", addr: echo, class: ClassRefused, status: 403, target: echo.String()},
		{name: "target refused", values: map[string]cty.Value{"proxy": httpURL(open)}, host: "closed.test", addr: closed, class: ClassTargetUnreachable, status: 500, target: closed.String()},
		{name: "https proxy", values: map[string]cty.Value{"proxy": cty.StringVal("https://" + front), "ca_file": cty.StringVal(caFile), "server_name": cty.StringVal("proxy.probe.test")},
			host: "echo.test", addr: echo, status: 200, target: echo.String()},
		{name: "https proxy untrusted", values: map[string]cty.Value{"proxy": cty.StringVal("https://" + front)},
			host: "echo.test", addr: echo, class: ClassTLS, target: echo.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDialer(t, tt.values)
			resp, err := d.Dial(t.Context(), &sdk.DialRequest{Address: tt.addr, Host: tt.host})
			if err != nil {
				t.Fatal(err)
			}
			proxy := strings.TrimPrefix(strings.TrimPrefix(tt.values["proxy"].AsString(), "http://"), "https://")
			plugintest.ProxyPhases(t, resp, proxy, tt.target)
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
			if st, _ := resp.Phases[1].Attrs["status"].(int); st != tt.status {
				t.Errorf("status %d, want %d", st, tt.status)
			}
			if resp.Failure != nil {
				return
			}
			defer resp.Conn.Close()
			t.Logf("connect %v, proxy %v", resp.Phases[0].Duration, resp.Phases[1].Duration)
			if d.tls == nil {
				if _, ok := resp.Conn.(*net.TCPConn); !ok {
					t.Errorf("conn is a %T, want the kernel socket to the proxy", resp.Conn)
				}
			} else if ms, _ := resp.Phases[1].Attrs["tls_ms"].(float64); ms <= 0 {
				t.Errorf("tls_ms %v, want the handshake with the proxy", resp.Phases[1].Attrs["tls_ms"])
			}
			_ = resp.Conn.SetDeadline(time.Now().Add(2 * time.Second))
			r := bufio.NewReader(resp.Conn)
			if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
				t.Fatalf("the target's greeting: %q, %v", line, err)
			}
			if _, err := resp.Conn.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != "echo ping\n" {
				t.Errorf("through the tunnel: %q, %v; want the echo", line, err)
			}
		})
	}
}

// TestHostileProxy checks that a proxy that does not answer, answers
// garbage or too much, or hangs up ends in its class within the timeout.
func TestHostileProxy(t *testing.T) {
	const timeout = 300 * time.Millisecond
	echo := plugintest.LineEcho(t, "hello\n")
	proxies := []plugintest.HostileProxy{
		{Name: "silent", Serve: func(net.Conn) {}, Class: ClassTimeout, Min: timeout - 20*time.Millisecond, Max: timeout + 150*time.Millisecond},
		{Name: "half a head", Serve: func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n")) }, Class: ClassTimeout, Min: timeout - 20*time.Millisecond, Max: timeout + 150*time.Millisecond},
		{Name: "garbage", Serve: func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH\r\n\r\n")) }, Class: ClassProtocol, Min: 0, Max: 150 * time.Millisecond},
		{Name: "hangs up", Serve: func(c net.Conn) { c.Close() }, Class: ClassProtocol, Min: 0, Max: 150 * time.Millisecond},
		// 16 KiB read a byte at a time: seconds under -race on a busy
		// machine, hence the long timeout; it must end in protocol anyway.
		{Name: "endless head", Serve: func(c net.Conn) {
			go func() { _, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 2*maxHeader))) }()
		}, Class: ClassProtocol, Min: 0, Max: 10 * time.Second},
		{Name: "teapot", Serve: func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 418 I'm a teapot\r\n\r\n")) }, Class: ClassError, Min: 0, Max: 150 * time.Millisecond},
		{Name: "bad gateway", Serve: func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\n\r\n")) }, Class: ClassTargetUnreachable, Min: 0, Max: 150 * time.Millisecond},
	}
	plugintest.RunHostileProxies(t, proxies, echo, func(t *testing.T, addr string, p plugintest.HostileProxy) sdk.Dialer {
		limit := timeout
		if p.Max > time.Second {
			limit = p.Max
		}
		return newDialer(t, map[string]cty.Value{"proxy": cty.StringVal("http://" + addr), "timeout": cty.StringVal(limit.String())})
	})
}

func TestNew(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "none.pem")
	if err := os.WriteFile(caFile, []byte("no PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]cty.Value
		proxy  string
		attr   string
	}{
		{"http default port", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1")}, "192.0.2.1:80", ""},
		{"https default port", map[string]cty.Value{"proxy": cty.StringVal("https://[2001:db8::1]")}, "[2001:db8::1]:443", ""},
		{"port", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1:3128/")}, "192.0.2.1:3128", ""},
		{"name", map[string]cty.Value{"proxy": cty.StringVal("http://proxy.example:3128")}, "", "proxy"},
		{"no scheme", map[string]cty.Value{"proxy": cty.StringVal("192.0.2.1:3128")}, "", "proxy"},
		{"socks", map[string]cty.Value{"proxy": cty.StringVal("socks5://192.0.2.1:1080")}, "", "proxy"},
		{"user in url", map[string]cty.Value{"proxy": cty.StringVal("http://u:p@192.0.2.1:3128")}, "", "proxy"},
		{"path", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1:3128/x")}, "", "proxy"},
		{"ca_file over http", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1"), "ca_file": cty.StringVal(caFile)}, "", "ca_file"},
		{"ca_file not PEM", map[string]cty.Value{"proxy": cty.StringVal("https://192.0.2.1"), "ca_file": cty.StringVal(caFile)}, "", "ca_file"},
		{"password alone", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1"), "password": cty.StringVal("x")}, "", "password"},
		{"colon in user", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1"), "username": cty.StringVal("a:b")}, "", "username"},
		{"resolve", map[string]cty.Value{"proxy": cty.StringVal("http://192.0.2.1"), "resolve": cty.StringVal("both")}, "", "resolve"},
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

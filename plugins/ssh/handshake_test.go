package sshhandshake

import (
	"context"
	"fmt"
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
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/probe-dev/probe/internal/leakcheck"
	"github.com/probe-dev/probe/internal/plugintest"
)

// server is OpenSSH's sshd, started once for the package by the first test
// that needs it (not by a fuzzing worker).
var server struct {
	once sync.Once
	sshd *daemon.SSHD
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server.sshd != nil {
		if err := server.sshd.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// startSSHD starts sshd the first time it is called.
func startSSHD(t *testing.T) *daemon.SSHD {
	t.Helper()
	server.once.Do(func() { server.sshd, server.err = daemon.StartSSHD() })
	if server.err != nil {
		t.Fatal(server.err)
	}
	return server.sshd
}

// handshake dials addr and runs a handshake configured by values over it.
func handshake(t *testing.T, ctx context.Context, values map[string]cty.Value, addr netip.AddrPort) *sdk.HandshakeResponse {
	t.Helper()
	h, err := plugintest.Handshaker(t, Plugin(), values)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := h.Handshake(ctx, &sdk.HandshakeRequest{Conn: conn, Host: "127.0.0.1", Address: addr})
	if err != nil {
		t.Fatalf("Handshake returned a Go error %v, want a result", err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != Phase {
		t.Fatalf("phases %+v, want one ssh phase", resp.Phases)
	}
	if resp.Conn != nil {
		t.Errorf("Conn = %v, want nil: the connection is unusable after ssh", resp.Conn)
	}
	return resp
}

func TestHandshakeOpenSSH(t *testing.T) {
	sshd := startSSHD(t)
	// x/crypto/ssh's goroutines end with each handshake.
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	str := func(s string) cty.Value { return cty.StringVal(s) }
	other := "SHA256:" + strings.Repeat("A", 43)
	keyAttrs := map[string]any{
		"kex":                  "curve25519-sha256",
		"host_key_algorithm":   "ssh-ed25519",
		"host_key_type":        sshd.HostKeyType,
		"host_key_fingerprint": sshd.HostKeyFingerprint,
	}
	tests := []struct {
		name   string
		values map[string]cty.Value
		class  sdk.Class // "" for success
		attrs  map[string]any
	}{
		{"no pin", nil, "", keyAttrs},
		{"pin", map[string]cty.Value{"host_key_fingerprint": str(sshd.HostKeyFingerprint)}, "", keyAttrs},
		{"pin with padding", map[string]cty.Value{"host_key_fingerprint": str(sshd.HostKeyFingerprint + "=")}, "", keyAttrs},
		{"host key algorithm", map[string]cty.Value{"host_key_algorithms": cty.ListVal([]cty.Value{str("ecdsa-sha2-nistp256"), str("ssh-ed25519")})}, "", keyAttrs},
		{"pin mismatch", map[string]cty.Value{"host_key_fingerprint": str(other)}, ClassHostKeyMismatch, keyAttrs},
		// sshd has an Ed25519 key only.
		{"no common host key algorithm", map[string]cty.Value{"host_key_algorithms": cty.ListVal([]cty.Value{str("rsa-sha2-512")})}, ClassProtocol,
			map[string]any{"kex": "curve25519-sha256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := handshake(t, context.Background(), tc.values, sshd.Addr)
			p := resp.Phases[0]
			if tc.class == "" && resp.Failure != nil {
				t.Fatalf("Failure = %+v, want none", resp.Failure)
			}
			if tc.class != "" && (resp.Failure == nil || resp.Failure.Class != tc.class || resp.Failure.Phase != Phase) {
				t.Fatalf("Failure = %+v, want class %s", resp.Failure, tc.class)
			}
			if p.OK != (tc.class == "") || p.Duration <= 0 || p.Duration > time.Second {
				t.Errorf("phase ok=%v duration=%v, want ok=%v within 1s", p.OK, p.Duration, tc.class == "")
			}
			for k, v := range tc.attrs {
				if diff := cmp.Diff(v, p.Attrs[k]); diff != "" {
					t.Errorf("attr %s (-want +got):\n%s", k, diff)
				}
			}
			if v, _ := p.Attrs["server_version"].(string); !strings.HasPrefix(v, "SSH-2.0-OpenSSH_9") {
				t.Errorf("server_version = %q, want OpenSSH's", p.Attrs["server_version"])
			}
			// The banner arrives within the phase, before the key exchange.
			banner, _ := p.Attrs["banner_ms"].(float64)
			if banner <= 0 || banner >= sdk.Milliseconds(p.Duration) {
				t.Errorf("banner_ms = %v, want in (0, %v)", p.Attrs["banner_ms"], sdk.Milliseconds(p.Duration))
			}
		})
	}
	// No handshake authenticated, nor tried to: sshd logs the user of an
	// authentication request ("Invalid user probe", "Connection closed by
	// authenticating user probe"); each handshake here was closed before
	// authentication ("[preauth]").
	time.Sleep(50 * time.Millisecond)
	if out := sshd.Output(); strings.Contains(out, "user") || strings.Count(out, "[preauth]") < len(tests) {
		t.Errorf("sshd saw an authentication attempt:\n%s", out)
	}
}

func TestHandshakeHostile(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	silent, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	// Lines that are no version line, then silence.
	chatty, err := lab.StartTCP(strings.Repeat("220 not ssh\r\n", 2000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chatty.Close() })
	// A version line, then a packet that is no KEXINIT.
	garbage, err := lab.StartTCP("SSH-2.0-liar\r\n\x00\x00\x00\x0c\x0a\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	reset, err := lab.StartTLS(lab.TLSOptions{Reset: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reset.Close() })
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		addr     netip.AddrPort
		ctx      context.Context
		class    sdk.Class
		min, max time.Duration
	}{
		{"silent", silent.Addr, context.Background(), ClassTimeout, 95 * time.Millisecond, time.Second},
		// x/crypto/ssh reads the version a byte at a time and gives up after
		// 1,024 lines: 13,000 reads, slow under the race detector.
		{"lines but no version", chatty.Addr, context.Background(), ClassProtocol, 0, 2 * time.Second},
		{"not a kexinit", garbage.Addr, context.Background(), ClassProtocol, 0, time.Second},
		{"http server", netip.MustParseAddrPort(web.Listener.Addr().String()), context.Background(), ClassProtocol, 0, time.Second},
		{"reset", reset.Addr, context.Background(), sdk.ClassTCPReset, 0, time.Second},
		{"canceled", silent.Addr, canceled, sdk.ClassCanceled, 0, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := map[string]cty.Value{"timeout": cty.StringVal("100ms")}
			if tc.class != ClassTimeout {
				timeout["timeout"] = cty.StringVal(tc.max.String())
			}
			resp := handshake(t, tc.ctx, timeout, tc.addr)
			if resp.Failure == nil || resp.Failure.Class != tc.class {
				t.Fatalf("Failure = %+v, want class %s", resp.Failure, tc.class)
			}
			if d := resp.Phases[0].Duration; d < tc.min || d > tc.max {
				t.Errorf("phase lasted %v, want in [%v, %v]", d, tc.min, tc.max)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	str := func(s string) cty.Value { return cty.StringVal(s) }
	tests := []struct {
		name  string
		attr  string
		value cty.Value
	}{
		{"fingerprint without prefix", "host_key_fingerprint", str(strings.Repeat("A", 43))},
		{"md5 fingerprint", "host_key_fingerprint", str("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48")},
		{"fingerprint too short", "host_key_fingerprint", str("SHA256:AAAA")},
		{"fingerprint not base64", "host_key_fingerprint", str("SHA256:" + strings.Repeat("!", 43))},
		{"unknown host key algorithm", "host_key_algorithms", cty.ListVal([]cty.Value{str("ssh-dss2")})},
		{"timeout garbage", "timeout", str("soon")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugintest.Handshaker(t, Plugin(), map[string]cty.Value{tc.attr: tc.value})
			if ae, ok := sdk.AsAttrError(err); !ok || ae.Attr != tc.attr {
				t.Errorf("New(%s = %#v) = %v, want an *sdk.AttrError for %s", tc.attr, tc.value, err, tc.attr)
			}
		})
	}
}

// TestWarm checks that the warm-up New runs once per process completes its
// handshake, with the plugin's own code: its errors are otherwise ignored,
// and a broken warm-up would leave the first handshake of every run cold
// without a word.
func TestWarm(t *testing.T) {
	if err := warm(); err != nil {
		t.Fatalf("warm-up handshake: %v", err)
	}
}

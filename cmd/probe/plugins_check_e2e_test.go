package main

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// checkSummary is the last line of `probe plugins check`.
var checkSummary = regexp.MustCompile(`\n(\d+) checks: (\d+) passed, (\d+) failed, (\d+) skipped\n$`)

// TestPluginsCheck runs `probe plugins check` on the plugins of this
// repository that must pass it: the built-ins served by probe itself
// (--isolate), their proxy dialers through a real microsocks and
// tinyproxy, and skipped, saying why, without them; the banner example,
// the Python plugin and the tailscale plugin with their check files. Each
// row passes (or is skipped, as the check file says) and probe exits 0.
func TestPluginsCheck(t *testing.T) {
	t.Parallel()
	proxy := daemon.ProxyFor(t)
	socks, httpProxy := proxy(daemon.StartMicrosocks("", "")), proxy(daemon.StartTinyproxy(""))
	tests := []struct {
		name    string
		args    []string
		checks  int // rows
		skipped int
		want    []string // rows the output must hold
	}{
		{"builtins", []string{"--isolate", "--socks5-proxy", socks, "--http-proxy", httpProxy}, 121, 7, []string{
			"dial-socks5        dialer     dial             pass",
			"dial-http-connect  dialer     dial             pass",
			"grpc-health        handshake  timing           pass",
			"http3              handshake  no socket kept   pass",
			"quic               dialer     dial             pass",
			"icmp               dialer     dial             pass",
			"dns-miekg          dialer     dial             pass",
			"icmp               dialer     deadline         skip: a dialer without a connection (dialer_conn = none) has no target on loopback",
			"dial-udp           dialer     dial             pass",
			"dial-udp           dialer     failure as data  pass",
			"dial-udp           dialer     deadline         pass",
			"udp-payload        handshake  timing           pass",
			"udp-payload        handshake  no socket kept   skip: UDP has no connection whose close the server could see",
			"udp-payload        handshake  failure as data  pass",
			"ssh                handshake  timing           pass",
			"starttls           handshake  timing           pass",
			"-                  -          whole attempt    pass",
		}},
		{"builtins without proxies", []string{"--isolate"}, 113, 9, []string{
			"dial-socks5        dialer     configure        skip: no SOCKS5 proxy to run it through (--socks5-proxy HOST:PORT)",
			"dial-http-connect  dialer     configure        skip: no HTTP proxy to run it through (--http-proxy HOST:PORT)",
		}},
		{"banner", []string{bannerBin(t), "--config", "../../examples/plugins/banner/check.hcl"}, 14, 1, nil},
		{"python-echo", []string{pythonEcho, "--config", "../../examples/plugins/python-echo/check.hcl"}, 14, 1, nil},
		{"tailscale", []string{tailscalePlugin(t), "--config", "../../plugins/tailscale/check.hcl"}, 16, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, append([]string{"plugins", "check"}, tt.args...)...)
			wantExit(t, r, exitOK)
			m := checkSummary.FindStringSubmatch(r.stdout)
			want := []string{strconv.Itoa(tt.checks), strconv.Itoa(tt.checks - tt.skipped), "0", strconv.Itoa(tt.skipped)}
			if m == nil || !slices.Equal(m[1:], want) {
				t.Errorf("summary %q, want %v checks, passed, failed, skipped:\n%s", m, want, r.stdout)
			}
			for _, row := range tt.want {
				if !strings.Contains(r.stdout, row) {
					t.Errorf("no row %q in:\n%s", row, r.stdout)
				}
			}
		})
	}
}

// TestPluginsCheckFails: a plugin that fails a check makes probe exit 1,
// the failed row saying why; bad usage exits 2.
func TestPluginsCheckFails(t *testing.T) {
	t.Parallel()
	r := probe(t, nil, "plugins", "check", bannerBin(t))
	wantExit(t, r, exitFailed)
	want := `banner  handshake  configure       FAIL: the configuration does not fit the schema: expect: Missing required argument: ` +
		`The argument "expect" is required, but no definition was found. (give its attributes in a check file, --config)`
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "Error: 1 of 7 checks failed") {
		t.Errorf("stdout:\n%s\nstderr:\n%s\nwant the row:\n%s", r.stdout, r.stderr, want)
	}
	// A QUIC dialer that does not trust the check's CA fails its dial, and
	// a QUIC handshake not pointed at the HTTP/3 server is skipped, saying
	// why.
	r = probe(t, nil, "plugins", "check", "--isolate", "--config", writeFile(t, "check.hcl", `dialer "quic" {}`))
	wantExit(t, r, exitFailed)
	for _, row := range []string{
		"quic               dialer     dial             FAIL: failed as tls.",
		`http3              handshake  handshake        skip: a handshake over QUIC is checked against the http3 server (server = "http3" in the check file), not echo`,
	} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("no row %q in:\n%s", row, r.stdout)
		}
	}
	// A dialer of TCP checked against the UDP echo server fails its dial; a
	// UDP handshake whose reply the server does not give fails, and ssh
	// against the echo server fails: the UDP, SSH rows can fail.
	r = probe(t, nil, "plugins", "check", "--isolate", "--config", writeFile(t, "check.hcl", `
dialer "dial-tcp" { server = "udp" }
handshake "udp-payload" {
  server = "udp"
  config = { payload = "ping", expect = "^pong$" }
}
handshake "ssh" {}
`))
	wantExit(t, r, exitFailed)
	for _, row := range []string{
		"dial-tcp           dialer     dial             FAIL: failed as tcp.refused",
		"udp-payload        handshake  handshake        FAIL: failed as udp.reply_mismatch",
		"ssh                handshake  handshake        FAIL: failed as ssh.protocol",
	} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("no row %q in:\n%s", row, r.stdout)
		}
	}
	wrong := strings.Repeat("0", 64)
	r = probe(t, nil, "plugins", "check", bannerBin(t), "--sha256", wrong)
	wantExit(t, r, exitFailed)
	if want := "does not match its sha256 pin " + wrong + "; refusing to run it"; !strings.Contains(r.stdout, want) {
		t.Errorf("a wrong pin: stdout\n%s\nwant the start row to say %q", r.stdout, want)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no binary", nil, "give a plugin binary, or --isolate alone for the built-ins"},
		{"binary and isolate", []string{bannerBin(t), "--isolate"}, "give a plugin binary, or --isolate alone"},
		{"missing binary", []string{"./nosuch"}, "nosuch: no such file or directory"},
		{"bad check file", []string{bannerBin(t), "--config", writeFile(t, "check.hcl", `handshake "banner" { server = "gopher" }`)},
			`server "gopher": want one of [echo greeting tls http grpc http3 udp ssh smtp dns]`},
		{"dialer against a handshake's server", []string{"--isolate", "--config", writeFile(t, "check.hcl", `dialer "dial-udp" { server = "ssh" }`)},
			`server "ssh": a dialer is checked against one of [echo udp dns]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probe(t, nil, append([]string{"plugins", "check"}, tc.args...)...)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to say %q", r.stderr, tc.want)
			}
		})
	}
}

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
)

// recordingServer starts an HTTP server on addr (a loopback address with
// port 0) that answers 200 and sends each request's target on the
// channel it returns.
func recordingServer(t *testing.T, addr string) (netip.AddrPort, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	seen := make(chan string, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RequestURI
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(ln.Addr().String()), seen
}

// tlsHint is the line `probe test` prints on stderr after probing
// host:port as TCP because no protocol was named.
func tlsHint(hostport string) string {
	return "hint: probed as TCP only; for TLS and HTTP: probe test https://" + hostport + "/\n"
}

// TestTestForms runs `probe test` on each form a target may be typed in: a
// URL (its path and query are the GET's), host:port (IPv6 bracketed),
// HOST PORT [PROTO]; each probes the host, port and protocol it names.
func TestTestForms(t *testing.T) {
	t.Parallel()
	http4, seen4 := recordingServer(t, "127.0.0.1:0")
	http6, seen6 := recordingServer(t, "[::1]:0")
	tcp, tls := testLab.TCP.Addr.Port(), testLab.TLS.Addr.Port()
	tests := []struct {
		name     string
		args     []string
		host     string
		port     uint16
		pipeline string
		seen     <-chan string // the server that must see the request
		path     string        // the request target it must see
		hint     bool          // the hint to ask for TLS on stderr under the waterfall
	}{
		{"http URL with path and query", []string{fmt.Sprintf("http://127.0.0.1:%d/healthz?full=1", http4.Port())},
			"127.0.0.1", http4.Port(), "http", seen4, "/healthz?full=1", false},
		{"http URL without path", []string{fmt.Sprintf("http://127.0.0.1:%d", http4.Port())},
			"127.0.0.1", http4.Port(), "http", seen4, "/", false},
		{"IPv6 http URL", []string{fmt.Sprintf("http://[::1]:%d/v6", http6.Port())},
			"::1", http6.Port(), "http", seen6, "/v6", false},
		{"https URL", []string{fmt.Sprintf("https://127.0.0.1:%d/api?v=2", tls), "--ca-file", testLab.CAFile},
			"127.0.0.1", tls, "https", nil, "", false},
		{"host:port", []string{fmt.Sprintf("127.0.0.1:%d", tcp)}, "127.0.0.1", tcp, "tcp", nil, "", true},
		{"IPv6 host:port", []string{fmt.Sprintf("[::1]:%d", http6.Port())}, "::1", http6.Port(), "tcp", nil, "", true},
		{"host:port:proto", []string{fmt.Sprintf("127.0.0.1:%d:http", http4.Port())},
			"127.0.0.1", http4.Port(), "http", seen4, "/", false},
		{"host port", []string{"127.0.0.1", fmt.Sprint(tcp)}, "127.0.0.1", tcp, "tcp", nil, "", true},
		{"host port tcp", []string{"127.0.0.1", fmt.Sprint(tcp), "tcp"}, "127.0.0.1", tcp, "tcp", nil, "", false},
		{"host port https", []string{"127.0.0.1", fmt.Sprint(tls), "https", "--ca-file", testLab.CAFile},
			"127.0.0.1", tls, "https", nil, "", false},
	}
	// Not parallel: each server's channel holds the requests of one case.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probe(t, nil, append([]string{"test", "-o", "json"}, tt.args...)...)
			wantExit(t, r, exitOK)
			doc := decodeDoc(t, r.stdout)
			if len(doc.Targets) != 1 || len(doc.Targets[0].Attempts) != 1 {
				t.Fatalf("want one target with one attempt:\n%s", r.stdout)
			}
			tj := doc.Targets[0]
			type target struct {
				Name, Host, Pipeline string
				Port                 uint16
			}
			want := target{Name: tt.args[0], Host: tt.host, Pipeline: tt.pipeline, Port: tt.port}
			if diff := cmp.Diff(want, target{tj.Name, tj.Host, tj.Pipeline, tj.Port}); diff != "" {
				t.Errorf("target (-want +got):\n%s", diff)
			}
			phases := pipelinePhases["tcp"]
			if tt.pipeline != "tcp" {
				phases = pipelinePhases["implied "+tt.pipeline]
			}
			a := tj.Attempts[0]
			checkAttempt(t, a, phases)
			if want := netip.AddrPortFrom(netip.MustParseAddr(tt.host), tt.port).String(); a.Address == nil || *a.Address != want {
				t.Errorf("address %v, want %s", a.Address, want)
			}
			if tt.seen != nil {
				select {
				case got := <-tt.seen:
					if got != tt.path {
						t.Errorf("the server was asked for %q, want %q", got, tt.path)
					}
				case <-time.After(5 * time.Second):
					t.Error("the server saw no request")
				}
			}
			if tt.pipeline == "https" {
				// The lab's TLS server answers every path; the url the
				// http phase reports is the one asked for.
				path := "/"
				if strings.Contains(tt.args[0], "://") {
					path = "/api?v=2"
				}
				checkAttrs(t, a.Phases[3], map[string]any{"url": fmt.Sprintf("https://127.0.0.1:%d%s", tls, path), "status": 200.0})
			}
			if strings.Contains(r.stderr, "hint:") {
				t.Errorf("a hint with -o json:\n%s", r.stderr)
			}
			if !tt.hint {
				return
			}
			r = probe(t, nil, append([]string{"test"}, tt.args...)...)
			wantExit(t, r, exitOK)
			if want := tlsHint(net.JoinHostPort(tt.host, fmt.Sprint(tt.port))); r.stderr != want {
				t.Errorf("waterfall: stderr %q, want %q", r.stderr, want)
			}
		})
	}

	// An IPv6 host is bracketed in the waterfall's head as in the hint.
	t.Run("IPv6 waterfall", func(t *testing.T) {
		for _, args := range [][]string{{fmt.Sprintf("[::1]:%d", http6.Port())}, {"::1", fmt.Sprint(http6.Port())}} {
			r := probe(t, nil, append([]string{"test"}, args...)...)
			wantExit(t, r, exitOK)
			if !strings.Contains(r.stdout, fmt.Sprintf("  [::1]:%d  → [::1]:%d\n", http6.Port(), http6.Port())) {
				t.Errorf("probe test %s: the waterfall lacks its head with [::1]:%d:\n%s", args, http6.Port(), r.stdout)
			}
			if want := tlsHint(fmt.Sprintf("[::1]:%d", http6.Port())); r.stderr != want || strings.Contains(r.stdout, "hint") {
				t.Errorf("probe test %s: stderr %q, want %q", args, r.stderr, want)
			}
		}
	})

	// Port 443 without a protocol is https, as `probe test HOST 443` has
	// always been: nothing listens there in the lab, but the pipeline says.
	for _, args := range [][]string{{"127.0.0.1:443"}, {"127.0.0.1", "443"}, {"https://127.0.0.1"}, {"http://127.0.0.1/"}} {
		t.Run("default port "+strings.Join(args, " "), func(t *testing.T) {
			r := probe(t, nil, append([]string{"test", "-o", "json", "--timeout", "1s"}, args...)...)
			if r.code != exitOK && r.code != exitFailed {
				t.Fatalf("exit %d:\n%s", r.code, r.stderr)
			}
			doc := decodeDoc(t, r.stdout)
			want, port := "https", uint16(443)
			if strings.HasPrefix(args[0], "http:") {
				want, port = "http", 80
			}
			if tj := doc.Targets[0]; tj.Pipeline != want || tj.Port != port {
				t.Errorf("pipeline %q port %d, want %q %d", tj.Pipeline, tj.Port, want, port)
			}
			if strings.Contains(r.stderr, "hint:") {
				t.Errorf("a hint for an https or http probe:\n%s", r.stderr)
			}
		})
	}
}

// TestTestBadTargets checks that a target `probe test` cannot read is a
// usage error that says what it expected, and that a URL's password is
// never echoed.
func TestTestBadTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"example.com"}, `give HOST PORT, or a URL such as https://example.com/`},
		{[]string{"ftp://127.0.0.1/"}, `unknown URL scheme "ftp": use http:// or https://`},
		{[]string{"https://user:hunter2@127.0.0.1/"}, `probe sends no credentials from a URL`},
		{[]string{"https:///path"}, `the URL names no host`},
		{[]string{"http://127.0.0.1:0/"}, `port "0" is not a number from 1 to 65535`},
		{[]string{"127.0.0.1:8443:gopher"}, `unknown protocol "gopher"`},
		{[]string{"https://127.0.0.1/", "443"}, `a URL names its own port and protocol`},
		{[]string{"::1:8443"}, `expected host:port[:proto]`},
		// No control character reaches a resolver (a NUL cannot be an
		// argument, but ESC, DEL and C1 can) or the terminal unescaped.
		{[]string{"\x1b[2Jlocalhost", "80"}, `host "\x1b[2Jlocalhost" holds a control character (U+001B at byte 0)`},
		{[]string{"a\x7f.example:80"}, `host "a\x7f.example" holds a control character (U+007F at byte 1)`},
		{[]string{"https://a\u0085b.example/"}, `host "a\u0085b.example" holds a control character (U+0085 at byte 1)`},
		{[]string{":8080"}, `target ":8080": host is empty`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, append([]string{"test"}, tt.args...)...)
			wantExit(t, r, exitUsage)
			if r.stdout != "" || !strings.Contains(r.stderr, tt.stderr) || strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stdout %q, stderr %q; want nothing and %q", r.stdout, r.stderr, tt.stderr)
			}
		})
	}
}

// TestFlagValues checks that a flag given a value out of its range is a
// usage error naming it, before anything is probed.
func TestFlagValues(t *testing.T) {
	t.Parallel()
	target := fmt.Sprintf("127.0.0.1:%d", testLab.TCP.Addr.Port())
	tests := []struct {
		args   []string
		stderr string
	}{
		{labArgs("--attempts", "0"), `invalid value "0" for --attempts: want a whole number of at least 1`},
		{labArgs("--attempts", "-3"), `invalid value "-3" for --attempts`},
		{labArgs("--concurrency", "0"), `invalid value "0" for --concurrency: want a whole number of at least 1`},
		{labArgs("--timeout", "0s"), `invalid value "0s" for --timeout: want a duration above zero`},
		{labArgs("--timeout", "-1s"), `invalid value "-1s" for --timeout`},
		{labArgs("--interval", "-1s"), `invalid value "-1s" for --interval: want a duration of zero or more`},
		{labArgs("--attempts", "many"), `invalid argument "many" for "--attempts" flag`},
		{[]string{"test", target, "-n", "0"}, `invalid value "0" for --attempts`},
		{[]string{"test", target, "--timeout", "0s"}, `invalid value "0s" for --timeout`},
		{[]string{"demo", "--attempts", "0"}, `invalid value "0" for --attempts`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[len(tt.args)-2:], " ")+" "+tt.args[0], func(t *testing.T) {
			t.Parallel()
			wantUsage(t, tt.args, tt.stderr)
		})
	}
}

// TestFlagsOverrideTargets checks that --attempts and --timeout win over
// both the run block and a target's own attempts and timeout, and that
// without them a target's own settings win over the run block's.
func TestFlagsOverrideTargets(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "own.hcl", labHeader("10s")+fmt.Sprintf(`
run {
  attempts = 4
  timeout  = "5s"
}

target "three" {
  host     = "tcp.probe.test"
  port     = %[1]d
  pipeline = pipeline.tcp
  attempts = 3
}

target "silent" {
  host     = "silent.probe.test"
  port     = %[1]d
  pipeline = pipeline.tcp
  attempts = 1
  timeout  = "1500ms"
}
`, testLab.TCP.Addr.Port()))
	for _, tt := range []struct {
		name          string
		flags         []string
		three, silent int     // attempts
		deadlineMS    float64 // the silent target's
	}{
		{"the targets' own", nil, 3, 1, 1500},
		{"--attempts and --timeout", []string{"--attempts", "2", "--timeout", "300ms"}, 2, 2, 300},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, append([]string{"run", file, "-o", "json"}, tt.flags...)...)
			wantExit(t, r, exitFailed)
			doc := decodeDoc(t, r.stdout)
			three, silent := doc.Targets[0], doc.Targets[1]
			if len(three.Attempts) != tt.three || !three.OK {
				t.Errorf("target three: %d attempts, ok %v; want %d, ok", len(three.Attempts), three.OK, tt.three)
			}
			if len(silent.Attempts) != tt.silent {
				t.Fatalf("target silent: %d attempts, want %d", len(silent.Attempts), tt.silent)
			}
			// The silent DNS server never answers: the attempt's deadline
			// ends it, not the resolver's own 10 s timeout.
			for _, a := range silent.Attempts {
				if a.Failure == nil || a.Failure.Class != sdk.ClassDNSTimeout {
					t.Errorf("silent attempt %d: failure %+v, want dns.timeout", a.Seq, a.Failure)
				}
				if a.TotalMS < tt.deadlineMS || a.TotalMS > tt.deadlineMS+500 {
					t.Errorf("silent attempt %d took %.1f ms, want its %v ms deadline", a.Seq, a.TotalMS, tt.deadlineMS)
				}
			}
		})
	}
}

// TestRunWithoutFile runs `probe run` with PROBE_TARGETS and no FILE: the
// targets run with the pipelines `probe test` implies (the system resolver
// and the system's roots, which SSL_CERT_FILE points at the lab's CA).
func TestRunWithoutFile(t *testing.T) {
	t.Parallel()
	tcp, tls := testLab.TCP.Addr.Port(), testLab.TLS.Addr.Port()
	env := []string{fmt.Sprintf("PROBE_TARGETS=127.0.0.1:%d, 127.0.0.1:%d:https", tcp, tls), "SSL_CERT_FILE=" + testLab.CAFile}
	r := probe(t, env, "run", "-o", "json", "--attempts", "2")
	wantExit(t, r, exitOK)
	doc := decodeDoc(t, r.stdout)
	type target struct {
		Name, Host, Pipeline string
		Port                 uint16
		OK                   bool
		Attempts             int
	}
	var got []target
	for _, tj := range doc.Targets {
		got = append(got, target{tj.Name, tj.Host, tj.Pipeline, tj.Port, tj.OK, len(tj.Attempts)})
		for _, a := range tj.Attempts {
			phases := pipelinePhases["tcp"]
			if tj.Pipeline == "https" {
				phases = pipelinePhases["implied https"]
				checkAttrs(t, a.Phases[0], map[string]any{"literal": true})
				checkAttrs(t, a.Phases[2], map[string]any{"verified": true})
				checkAttrs(t, a.Phases[3], map[string]any{"status": 200.0, "url": fmt.Sprintf("https://127.0.0.1:%d/", tls)})
			}
			checkAttempt(t, a, phases)
		}
	}
	want := []target{
		{fmt.Sprintf("127.0.0.1:%d", tcp), "127.0.0.1", "tcp", tcp, true, 2},
		{fmt.Sprintf("127.0.0.1:%d:https", tls), "127.0.0.1", "https", tls, true, 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if doc.File != "" || doc.Summary.Targets != 2 || doc.Summary.OK != 2 {
		t.Errorf("file %q, summary %+v; want no file and 2 targets ok", doc.File, doc.Summary)
	}

	for _, tt := range []struct {
		name   string
		env    []string
		args   []string
		stderr string
	}{
		{"no targets", nil, []string{"run"}, `no targets: give a pipeline FILE, or set PROBE_TARGETS="host:port[:proto],..."`},
		{"empty PROBE_TARGETS", []string{"PROBE_TARGETS= , "}, []string{"run"}, `no targets: give a pipeline FILE`},
		{"-var without FILE", env, []string{"run", "-var", "a=b"}, `-var and -var-file set a FILE's variables: give the FILE`},
		{"malformed PROBE_TARGETS", []string{"PROBE_TARGETS=127.0.0.1"}, []string{"run"}, `PROBE_TARGETS: target "127.0.0.1"`},
		{"control character in PROBE_TARGETS", []string{"PROBE_TARGETS=127.0.0.1:80,localhost\x1b.corp.example:80"}, []string{"run"},
			`PROBE_TARGETS: target "localhost\x1b.corp.example:80": host "localhost\x1b.corp.example" holds a control character (U+001B at byte 9)`},
		{"two files", nil, []string{"run", "a.hcl", "b.hcl"}, `accepts at most 1 arg(s), received 2`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, tt.env, tt.args...)
			wantExit(t, r, exitUsage)
			if r.stdout != "" || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stdout %q, stderr %q; want nothing and %q", r.stdout, r.stderr, tt.stderr)
			}
		})
	}
}

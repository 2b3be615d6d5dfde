package main

import (
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/internal/lab"
)

// evil is what a hostile server puts in its certificate's names: ESC
// sequences that clear the screen and set the window title, a C1 CSI, and
// a line break; evilDNS the same in ASCII, as a DNS name must be.
const (
	evil    = "x\x1b[2J\x1b]0;pwned\x07\u009b31m\nforged"
	evilDNS = "x\x1b[2J\x1b]0;pwned\x07\nforged"
)

// terminalControls lists the characters in s that a terminal would act on:
// C0 but the line break, DEL, C1, and bytes that are not UTF-8.
func terminalControls(s string) []string {
	var found []string
	for i, r := range s {
		_, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			found = append(found, fmt.Sprintf("byte %#x at %d", s[i], i))
		case r < 0x20 && r != '\n', r >= 0x7f && r <= 0x9f:
			found = append(found, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return found
}

// TestTerminalEscapes: a server whose certificate's issuer, subject and a
// DNS name carry terminal escapes, probed by the real binary in every
// output and with -vv logs: no control character reaches stdout or
// stderr (and, as they are no terminal, no ESC at all); the waterfall shows
// the certificate's text with its escapes visible.
func TestTerminalEscapes(t *testing.T) {
	ca, err := lab.NewCA("CA " + evil)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "evil-ca.pem")
	if err := ca.WritePEM(caFile); err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueSubject(pkix.Name{CommonName: "api.probe.test", Organization: []string{evil}},
		[]string{"api.probe.test", evilDNS}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lab.StartTLS(lab.TLSOptions{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	file := writeFile(t, "evil.hcl", fmt.Sprintf(`
resolver "system" { plugin = "dns-system" }
dialer "tcp" { plugin = "dial-tcp" }

handshake "evil" {
  plugin      = "tls"
  ca_file     = %[1]q
  server_name = "api.probe.test"
}

# The certificate is not for this name: the failure message quotes its DNS names.
handshake "mismatch" {
  plugin      = "tls"
  ca_file     = %[1]q
  server_name = "other.probe.test"
}

pipeline "evil" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.evil]
}

pipeline "mismatch" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.mismatch]
}

target "evil" {
  host     = "127.0.0.1"
  port     = %[2]d
  pipeline = pipeline.evil
}

target "mismatch" {
  host     = "127.0.0.1"
  port     = %[2]d
  pipeline = pipeline.mismatch
}
`, caFile, srv.Addr.Port()))

	for _, tt := range []struct {
		args  []string
		shows []string // on stdout
	}{
		{[]string{"-o", "waterfall"}, []string{`cert_issuer = "CN=CA x\x1b[2J\x1b]0\\;pwned\a\u009b31m\nforged,O=probe lab"`,
			`tls.cert_name_mismatch: "tls handshake with 127.0.0.1:`, `x509: certificate is valid for api.probe.test, x\x1b[2J\x1b]0;pwned\a\nforged, not other.probe.test"`}},
		{[]string{"-o", "waterfall", "--isolate", "-vv"}, []string{`cert_subject = "CN=api.probe.test,O=x\x1b[2J\x1b]0\\;pwned\a\u009b31m\nforged"`}},
		{[]string{"-o", "table", "-vv"}, nil},
		{[]string{"-o", "json", "-v"}, []string{`x\u001b[2J\u001b]0`, `\u0007\u009b31m\nforged`}},
		{[]string{"-o", "jsonl", "-v"}, []string{`x\u001b[2J\u001b]0`, `\u0007\u009b31m\nforged`}},
		{[]string{"-o", "prometheus"}, []string{`probe_scheduled_success{target="evil"} 1`}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, slices.Concat([]string{"run", file}, tt.args)...)
			wantExit(t, r, exitFailed)
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if c := terminalControls(out); len(c) > 0 {
					t.Errorf("%s: control characters reach the terminal: %v\n%s", name, c, out)
				}
				if strings.Contains(out, "\x1b") {
					t.Errorf("%s: an ESC byte, but no terminal to colour", name)
				}
			}
			for _, want := range tt.shows {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %s:\n%s", want, r.stdout)
				}
			}
			if slices.Contains(tt.args, "-v") && !strings.Contains(r.stderr, `attempt finished`) {
				t.Errorf("no -v log lines on stderr:\n%s", r.stderr)
			}
		})
	}
}

// TestManyAddresses: one DNS reply of 4,000 A records (64 KB, over TCP
// after a truncated UDP answer), probed under address_policy "all" by the
// real binary: a round takes the first 64 addresses and says so, the
// reply's addresses are written once, in the first attempt, and the output
// and the process's peak memory stay bounded. Before, each of 4,000
// attempts listed all 4,000 addresses: about 500 MB of JSON and 2 GB of
// memory.
func TestManyAddresses(t *testing.T) {
	const n = 4000
	dns, err := lab.StartDNS("probe.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 1, byte((i + 1) >> 8), byte(i + 1)})
	}
	dns.AddAddr("many", addrs...)
	dns.SetBehavior("many", lab.DNSBehavior{Compress: true})
	port := testLab.Refused.Port() // nothing listens there, on any 127.0.0.0/8 address
	file := writeFile(t, "many.hcl", fmt.Sprintf(`
resolver "lab" {
  plugin      = "dns-miekg"
  servers     = [%q]
  query_types = ["A"]
}
dialer "tcp" { plugin = "dial-tcp" }
pipeline "all" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "all"
}
target "many" {
  host     = "many.probe.test"
  port     = %d
  pipeline = pipeline.all
}
`, dns.Addr, port))

	for _, format := range []string{"json", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			p := startProbe(t, nil, "run", file, "-o", format)
			peakRSS := watchPeakRSS(p.cmd.Process.Pid)
			r := p.wait(t)
			wantExit(t, r, exitFailed)
			peak := peakRSS()
			t.Logf("%d addresses: %d bytes of %s, peak RSS %d MB", n, len(r.stdout), format, peak>>20)
			if len(r.stdout) > 1<<20 || peak > 200<<20 {
				t.Errorf("%d bytes of output, peak RSS %d MB: want at most 1 MB and 200 MB", len(r.stdout), peak>>20)
			}
			var attempts []report.AttemptJSON
			if format == "json" {
				attempts = decodeDoc(t, r.stdout).Targets[0].Attempts
			} else {
				for line := range strings.Lines(r.stdout) {
					var a report.AttemptJSON
					if err := json.Unmarshal([]byte(line), &a); err != nil {
						t.Fatal(err)
					}
					attempts = append(attempts, a)
				}
			}
			if len(attempts) != engine.MaxAddresses {
				t.Fatalf("%d attempts, want %d", len(attempts), engine.MaxAddresses)
			}
			first := netip.AddrPortFrom(addrs[0], port).String()
			for i, a := range attempts {
				attrs := a.Phases[0].Attrs
				switch want := netip.AddrPortFrom(addrs[i], port).String(); {
				case a.Address == nil || *a.Address != want:
					t.Errorf("attempt %d at %v, want %s", i, a.Address, want)
				case i == 0 && (len(attrs["addresses"].([]any)) != n || attrs["addresses_total"] != float64(n) ||
					attrs["addresses_probed"] != float64(engine.MaxAddresses)):
					t.Errorf("first attempt's resolve attrs: %d addresses, total %v, probed %v", len(attrs["addresses"].([]any)),
						attrs["addresses_total"], attrs["addresses_probed"])
				case i > 0 && (len(attrs) != 1 || attrs["shared_with"] != first):
					t.Errorf("attempt %d's resolve attrs %v, want only shared_with %s", i, attrs, first)
				}
			}
		})
	}
}

// TestTwoHTTPHandshakes: a pipeline with two http handshakes (a health
// check, then a readiness check, on one connection), over HTTP/2 and
// HTTP/1.1, in process and out: both succeed, the second phase is "http#2"
// in every output, -o prometheus and /probe write every metric, and
// net/http writes nothing on stderr. Before, -o prometheus wrote nothing
// (two phases of one name), /probe answered 500, and the second request
// failed beside an "Unsolicited response" line.
func TestTwoHTTPHandshakes(t *testing.T) {
	file := writeFile(t, "twice.hcl", labHeader("1s")+fmt.Sprintf(`
handshake "tls11" {
  plugin  = "tls"
  ca_file = %q
  alpn    = ["http/1.1"]
}
handshake "health" {
  plugin = "http"
  path   = "/healthz"
}
handshake "ready" {
  plugin = "http"
  path   = "/ready"
}
pipeline "h2" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls, handshake.health, handshake.ready]
}
pipeline "h1" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls11, handshake.health, handshake.ready]
}
target "h2" {
  host     = "api.probe.test"
  port     = %[2]d
  pipeline = pipeline.h2
}
target "h1" {
  host     = "api.probe.test"
  port     = %[2]d
  pipeline = pipeline.h1
}
`, testLab.CAFile, testLab.TLS.Addr.Port()))

	metrics := func(target string) []string {
		return []string{
			fmt.Sprintf(`probe_scheduled_success{target=%q} 1`, target),
			fmt.Sprintf(`probe_attempt_phase_duration_seconds_count{phase="http",target=%q} 1`, target),
			fmt.Sprintf(`probe_attempt_phase_duration_seconds_count{phase="http#2",target=%q} 1`, target),
		}
	}
	for _, args := range [][]string{{"-o", "prometheus"}, {"-o", "prometheus", "--isolate"}, {"-o", "json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, slices.Concat([]string{"run", file}, args)...)
			wantExit(t, r, exitOK)
			if r.stderr != "" {
				t.Errorf("stderr:\n%s", r.stderr)
			}
			if args[1] == "json" {
				for _, tj := range decodeDoc(t, r.stdout).Targets {
					var names []string
					for _, p := range tj.Attempts[0].Phases {
						names = append(names, p.Phase)
					}
					if want := []string{"resolve", "connect", "tls", "http", "http#2"}; !slices.Equal(names, want) {
						t.Errorf("%s: phases %v, want %v", tj.Name, names, want)
					}
				}
				return
			}
			for _, want := range slices.Concat(metrics("h1"), metrics("h2")) {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("output lacks %s:\n%s", want, r.stdout)
				}
			}
		})
	}
	t.Run("serve", func(t *testing.T) {
		s := startServe(t, file)
		for _, target := range []string{"h1", "h2"} {
			code, body := get(t, "http://"+s.addr+"/probe?target="+target)
			if code != 200 || !strings.Contains(body, "probe_success 1") || !strings.Contains(body, `probe_phase_duration_seconds{phase="http#2"}`) {
				t.Errorf("/probe?target=%s: %d\n%s", target, code, body)
			}
		}
	})
}

// watchPeakRSS samples the peak resident set size (VmHWM) of the process
// pid every millisecond until the returned function is called, which
// returns the largest in bytes. The rusage of a waited-for child will not
// do: Linux carries the peak of the memory it was forked from (this test
// process, hundreds of MB under the race detector) across its exec.
func watchPeakRSS(pid int) func() int64 {
	var (
		peak atomic.Int64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	status := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(done)
		for {
			if b, err := os.ReadFile(status); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64); err == nil && n<<10 > peak.Load() {
							peak.Store(n << 10)
						}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

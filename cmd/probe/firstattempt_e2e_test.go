package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/stats"
	"github.com/probe-dev/probe/internal/lab"
)

// firstAttemptHCL probes the lab's TLS server as a user with no ca_file
// does, ten attempts one after the other, over HTTP/2 (target "h2") and
// then HTTP/1.1 (target "h1"), each target with handshake components of
// its own: localhost through dns-system (from /etc/hosts), a TCP connect,
// TLS verified against the system's roots, and a GET of /.
const firstAttemptHCL = `
run {
  mode     = "sequential"
  attempts = 10
}

resolver "system" {
  plugin  = "dns-system"
  network = "ip4"
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls_h2" {
  plugin      = "tls"
  server_name = "api.probe.test"
  alpn        = ["h2"]
}

handshake "tls_h1" {
  plugin      = "tls"
  server_name = "api.probe.test"
  alpn        = ["http/1.1"]
}

handshake "http_h2" { plugin = "http" }
handshake "http_h1" { plugin = "http" }

pipeline "h2" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls_h2, handshake.http_h2]
}

pipeline "h1" {
  resolvers  = [resolver.system]
  dialer     = dialer.tcp
  handshakes = [handshake.tls_h1, handshake.http_h1]
}

target "h2" {
  host     = "localhost"
  port     = %[1]d
  pipeline = pipeline.h2
}

target "h1" {
  host     = "localhost"
  port     = %[1]d
  pipeline = pipeline.h1
}
`

// firstAttemptBound is how much longer than the median of the next nine
// attempts a target's first attempt may spend in each phase. tls's is the
// issue's; the others sit well below the one-time cost each warm-up
// removed, measured here (2 cores, loaded): 0.4-0.7 ms in resolve (the C
// library reading its configuration), 0.7-1.5 ms in http (Go's HTTP/2
// set-up). Loading the bundle of system roots below cost 5-13 ms in tls.
var firstAttemptBound = map[string]time.Duration{
	"resolve": 250 * time.Microsecond,
	"connect": time.Millisecond,
	"tls":     time.Millisecond,
	"http":    500 * time.Microsecond,
}

// fillerRoots is how many roots, besides the lab's CA, the bundle of system
// roots holds: as many as a distribution's, and more, so that loading it
// costs milliseconds.
const fillerRoots = 300

// TestFirstAttempt checks that a fresh process's first attempt measures
// the network and the server, not the process's one-time set-up: each
// phase of each target's first attempt is within firstAttemptBound of the
// median of its next nine, with the built-ins in process and out of
// process. The "system roots" are a bundle SSL_CERT_FILE names (the lab's
// CA and fillerRoots others), SSL_CERT_DIR an empty directory. A one-time
// cost is in the first attempt of every process, but the machine delays
// some attempts at random: each phase must keep to its bound in one of up
// to five fresh processes.
func TestFirstAttempt(t *testing.T) {
	dir := t.TempDir()
	bundle := systemRootsBundle(t, dir)
	certDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"SSL_CERT_FILE=" + bundle, "SSL_CERT_DIR=" + certDir}
	file := writeFile(t, "first.hcl", fmt.Sprintf(firstAttemptHCL, testLab.TLS.Addr.Port()))
	// The lab's server answers warm: its own first handshakes are not
	// probe's to measure.
	wantExit(t, probe(t, env, "run", file, "-o", "json"), exitOK)
	for _, mode := range []struct {
		name string
		args []string
	}{{"in process", nil}, {"isolated", []string{"--isolate"}}} {
		t.Run(mode.name, func(t *testing.T) {
			pending := map[string]bool{} // "target phase" not yet within its bound
			var runs []string
			for try := 0; try < 5 && (try == 0 || len(pending) > 0); try++ {
				r := probe(t, env, slices.Concat([]string{"run", file, "-o", "json"}, mode.args)...)
				wantExit(t, r, exitOK)
				var line []string
				for _, target := range decodeDoc(t, r.stdout).Targets {
					if len(target.Attempts) != 10 {
						t.Fatalf("target %s: %d attempts, want 10", target.Name, len(target.Attempts))
					}
					durations := map[string][]time.Duration{}
					for _, a := range target.Attempts {
						for _, p := range a.Phases {
							durations[p.Phase] = append(durations[p.Phase], msDuration(p.DurationMS))
						}
					}
					for phase, bound := range firstAttemptBound {
						d := durations[phase]
						if len(d) != 10 {
							t.Fatalf("target %s: %d %s phases, want 10", target.Name, len(d), phase)
						}
						key := target.Name + " " + phase
						excess := d[0] - stats.Percentile(slices.Sorted(slices.Values(d[1:])), 50)
						if try == 0 {
							pending[key] = true
						}
						if excess <= bound {
							delete(pending, key)
						}
						line = append(line, fmt.Sprintf("%s %+.3f", key, excess.Seconds()*1e3))
					}
				}
				slices.Sort(line)
				runs = append(runs, strings.Join(line, ", "))
			}
			t.Logf("first attempt less the median of the next nine, ms, per run:\n%s", strings.Join(runs, "\n"))
			for _, key := range slices.Sorted(maps.Keys(pending)) {
				phase := key[strings.IndexByte(key, ' ')+1:]
				t.Errorf("%s: the first attempt took more than %v longer than the median of the next nine in each of %d runs",
					key, firstAttemptBound[phase], len(runs))
			}
		})
	}
}

// systemRootsBundle writes a PEM bundle of roots to dir, the lab's CA
// among fillerRoots others, and returns its path. It logs what parsing the
// bundle costs, the cost that loadSystemRoots moves out of the first tls
// phase.
func systemRootsBundle(t *testing.T, dir string) string {
	t.Helper()
	var pem bytes.Buffer
	for i := range fillerRoots {
		ca, err := lab.NewCA(fmt.Sprintf("filler root %d", i))
		if err != nil {
			t.Fatal(err)
		}
		pem.Write(ca.CertPEM)
		if i == fillerRoots/2 {
			pem.Write(testLab.CA.CertPEM)
		}
	}
	path := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(path, pem.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !x509.NewCertPool().AppendCertsFromPEM(pem.Bytes()) {
		t.Fatal("the bundle of roots holds no certificate")
	}
	t.Logf("parsing the bundle of %d roots took %v", fillerRoots+1, time.Since(start))
	return path
}

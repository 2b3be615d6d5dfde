package main

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// wrongIDDNS starts a DNS server that answers every A query with 127.0.0.1
// under an ID other than the query's.
func wrongIDDNS(t *testing.T) string {
	t.Helper()
	s, err := lab.StartRawDNS(func(q []byte) []byte {
		m := new(dns.Msg)
		if m.Unpack(q) != nil || len(m.Question) != 1 {
			return nil
		}
		m.Response, m.Id = true, m.Id+1
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(127, 0, 0, 1)}}
		b, _ := m.Pack()
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr
}

// TestHostileServers probes servers that misbehave on purpose, in process
// and out of process, under a 1 s attempt timeout: each attempt ends in
// the right failure class, in the phase at fault, and in time.
func TestHostileServers(t *testing.T) {
	names, ips := []string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	cert, err := testLab.CA.Issue(names, ips, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	trickle, err := lab.StartTrickleTLS(cert, time.Second) // a byte a second
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = trickle.Close() })
	const chainSize = 100 << 10
	chainCert, err := testLab.CA.IssueChain(names, ips, 3, chainSize)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := lab.StartTLS(lab.TLSOptions{Cert: chainCert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chain.Close() })
	wrongID := wrongIDDNS(t)

	file := writeFile(t, "hostile.hcl", labHeader("300ms")+fmt.Sprintf(`
run {
  timeout = "1s"
}

resolver "wrongid_udp" {
  plugin      = "dns-miekg"
  servers     = [%[1]q]
  query_types = ["A"]
  timeout     = "300ms"
}

resolver "wrongid_udp_slow" {
  plugin      = "dns-miekg"
  servers     = [%[1]q]
  query_types = ["A"]
  timeout     = "5s"  # longer than the attempt
}

resolver "wrongid_tcp" {
  plugin      = "dns-miekg"
  servers     = [%[1]q]
  query_types = ["A"]
  transport   = "tcp"
  timeout     = "300ms"
}

pipeline "wrongid_udp" {
  resolvers = [resolver.wrongid_udp]
  dialer    = dialer.tcp
}

pipeline "wrongid_udp_slow" {
  resolvers = [resolver.wrongid_udp_slow]
  dialer    = dialer.tcp
}

pipeline "wrongid_tcp" {
  resolvers = [resolver.wrongid_tcp]
  dialer    = dialer.tcp
}

target "trickle" {
  host     = "api.probe.test"
  port     = %[2]d
  pipeline = pipeline.https
}

target "chain" {
  host     = "api.probe.test"
  port     = %[3]d
  pipeline = pipeline.https
}

target "reset" {
  host     = "reset.probe.test"
  port     = %[4]d
  pipeline = pipeline.https
}

target "silent" {
  host     = "silent.probe.test"
  port     = %[5]d
  pipeline = pipeline.tcp
}

target "wrongid_udp" {
  host     = "api.probe.test"
  port     = %[5]d
  pipeline = pipeline.wrongid_udp
}

target "wrongid_udp_slow" {
  host     = "api.probe.test"
  port     = %[5]d
  pipeline = pipeline.wrongid_udp_slow
}

target "wrongid_tcp" {
  host     = "api.probe.test"
  port     = %[5]d
  pipeline = pipeline.wrongid_tcp
}
`, wrongID, trickle.Addr.Port(), chain.Addr.Port(), testLab.Reset.Addr.Port(), testLab.TCP.Addr.Port()))

	const timeout, margin = time.Second, 250 * time.Millisecond
	type want struct {
		class    sdk.Class // "" for ok
		phase    string    // the failed phase, or the phase to time when ok
		min, max time.Duration
	}
	wants := map[string]want{
		// One byte a second: the handshake cannot finish before the attempt's deadline.
		"trickle": {sdk.ClassTLSTimeout, sdk.PhaseTLS, timeout - 100*time.Millisecond, timeout + margin},
		// 100 KB of certificates is within crypto/tls's 256 KiB limit on a Certificate message.
		"chain": {"", sdk.PhaseTLS, 0, margin},
		"reset": {sdk.ClassTCPReset, sdk.PhaseTLS, 0, margin},
		// The DNS timeout (300 ms) comes first; a reply with another ID is a stray to ignore.
		"silent":      {sdk.ClassDNSTimeout, sdk.PhaseResolve, 300 * time.Millisecond, 300*time.Millisecond + margin},
		"wrongid_udp": {sdk.ClassDNSTimeout, sdk.PhaseResolve, 300 * time.Millisecond, 300*time.Millisecond + margin},
		// The attempt's deadline (1 s) comes before the DNS timeout (5 s).
		// (The resolve phase starts a little after the attempt's clock.)
		"wrongid_udp_slow": {sdk.ClassDNSTimeout, sdk.PhaseResolve, timeout - 50*time.Millisecond, timeout + margin},
		// Over TCP the connection is the query's own: another ID is a broken server.
		"wrongid_tcp": {sdk.ClassDNSMalformed, sdk.PhaseResolve, 0, margin},
	}
	for _, mode := range []struct {
		name string
		args []string
	}{{"in process", nil}, {"isolated", []string{"--isolate"}}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, nil, slices.Concat([]string{"run", file, "-o", "json"}, mode.args)...)
			wantExit(t, r, exitFailed)
			doc := decodeDoc(t, r.stdout)
			if len(doc.Targets) != len(wants) {
				t.Fatalf("%d targets, want %d", len(doc.Targets), len(wants))
			}
			for _, tj := range doc.Targets {
				w := wants[tj.Name]
				if len(tj.Attempts) != 1 {
					t.Errorf("%s: %d attempts, want 1", tj.Name, len(tj.Attempts))
					continue
				}
				a := tj.Attempts[0]
				switch {
				case w.class == "" && a.Failure != nil:
					t.Errorf("%s: failure %+v, want ok", tj.Name, a.Failure)
				case w.class != "" && (a.Failure == nil || a.Failure.Class != w.class || a.Failure.Phase != w.phase):
					t.Errorf("%s: failure %+v, want %s in %s", tj.Name, a.Failure, w.class, w.phase)
				}
				if total := msDuration(a.TotalMS); total > timeout+margin {
					t.Errorf("%s: the attempt took %v, beyond its timeout %v", tj.Name, total, timeout)
				}
				p := findPhase(a, w.phase)
				if p == nil {
					t.Errorf("%s: no %s phase: %+v", tj.Name, w.phase, a.Phases)
					continue
				}
				if d := msDuration(p.DurationMS); d < w.min || d > w.max {
					t.Errorf("%s: %s took %v, want [%v, %v]", tj.Name, w.phase, d, w.min, w.max)
				}
				if tj.Name == "chain" && p.Attrs["verified"] != true {
					t.Errorf("chain: tls attrs %v, want the chain verified", p.Attrs)
				}
			}
		})
	}
}

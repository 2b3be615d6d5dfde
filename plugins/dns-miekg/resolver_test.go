package dnsmiekg

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
)

// dotCA is the CA of the certificates the tests' DNS-over-TLS servers
// present, for 127.0.0.1 and dns.probe.test; dotCAFile holds it in PEM.
var (
	dotCA     *lab.CA
	dotCAFile string
)

func TestMain(m *testing.M) {
	var err error
	if dotCA, err = lab.NewCA("dns-miekg test CA"); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "dns-miekg-test-")
	if err != nil {
		panic(err)
	}
	dotCAFile = filepath.Join(dir, "ca.pem")
	if err := dotCA.WritePEM(dotCAFile); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dotCert issues a certificate for a DNS-over-TLS server on 127.0.0.1.
func dotCert(t testing.TB) tls.Certificate {
	t.Helper()
	cert, err := dotCA.Issue([]string{"dns.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// startDNS starts a lab DNS server for probe.test. with the names the tests
// use, serving DNS over TLS too, closed when the test ends.
func startDNS(t testing.TB) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("probe.test.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := s.ServeTLS(dotCert(t)); err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddr("127.0.0.1")
	s.AddAddr("api", local, netip.MustParseAddr("127.0.0.2"))
	s.AddAddr("v6", netip.MustParseAddr("::1"))
	s.AddAddr("both", local, netip.MustParseAddr("::1"))
	var many []netip.Addr
	for i := range 40 { // 671 bytes: more than 512, less than 1232
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	s.AddAddr("many", many...)
	for _, name := range []string{"slow", "truncated", "notcp", "secure"} {
		s.AddAddr(name, local)
	}
	s.SetBehavior("slow", lab.DNSBehavior{Delay: 30 * time.Millisecond})
	s.SetBehavior("truncated", lab.DNSBehavior{Truncate: true})
	s.SetBehavior("notcp", lab.DNSBehavior{Truncate: true, SilentTCP: true})
	s.SetBehavior("secure", lab.DNSBehavior{AD: true})
	s.SetBehavior("empty", lab.DNSBehavior{})
	s.SetBehavior("servfail", lab.DNSBehavior{Rcode: dns.RcodeServerFailure})
	s.SetBehavior("refused", lab.DNSBehavior{Rcode: dns.RcodeRefused})
	s.SetBehavior("silent", lab.DNSBehavior{Silent: true})
	s.SetBehavior("malformed", lab.DNSBehavior{Malformed: true})
	return s
}

// startSilent starts a lab DNS server that never answers.
func startSilent(t *testing.T) string {
	t.Helper()
	s := startDNS(t)
	s.SetBehavior("*", lab.DNSBehavior{Silent: true})
	return s.Addr
}

// newResolver builds a Resolver through the plugin's schema, as the core does.
func newResolver(t testing.TB, values map[string]cty.Value) *Resolver {
	t.Helper()
	p := Plugin()
	cfg, err := p.ResolverSchema.Config(values)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Resolver)
}

func strs(ss ...string) cty.Value {
	vals := make([]cty.Value, len(ss))
	for i, s := range ss {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

// resolve runs one resolution and checks the response's shape: one resolve
// phase that agrees with the failure, addresses only on success, and tries
// that fit inside the phase.
func resolve(t *testing.T, ctx context.Context, r *Resolver, host string) (*sdk.ResolveResponse, sdk.Phase) {
	t.Helper()
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: host, Port: 443})
	if err != nil {
		t.Fatalf("Resolve(%q): %v", host, err)
	}
	if len(resp.Phases) != 1 || resp.Phases[0].Name != sdk.PhaseResolve {
		t.Fatalf("Resolve(%q) phases = %+v, want one %q phase", host, resp.Phases, sdk.PhaseResolve)
	}
	ph := resp.Phases[0]
	if ph.OK != (resp.Failure == nil) {
		t.Errorf("phase OK = %v with failure %v", ph.OK, resp.Failure)
	}
	if resp.Failure != nil && (resp.Failure.Phase != sdk.PhaseResolve || len(resp.Addresses) > 0) {
		t.Errorf("failure %+v with addresses %v", resp.Failure, resp.Addresses)
	}
	if ph.Start < 0 || ph.Start > 5*time.Millisecond || ph.Duration <= 0 {
		t.Errorf("phase start %v, duration %v", ph.Start, ph.Duration)
	}
	phaseMS := float64(ph.Start+ph.Duration) / float64(time.Millisecond)
	for i, tr := range tries(ph) {
		start, connect, rtt := tr["start_ms"].(float64), tr["connect_ms"], tr["rtt_ms"].(float64)
		end := start + rtt
		if c, ok := connect.(float64); ok {
			end += c
		}
		if start < 0 || rtt < 0 || end > phaseMS {
			t.Errorf("try %d %v does not fit in the phase [0, %.3fms]", i, tr, phaseMS)
		}
	}
	return resp, ph
}

// tries returns the phase's tries attribute.
func tries(ph sdk.Phase) []map[string]any {
	list, _ := ph.Attrs["tries"].([]any)
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

// tryView is what a test compares of one try: the timings are checked apart.
type tryView struct{ Server, Type, Transport, Outcome string }

// triesByType returns the phase's tries without their timings, grouped by
// query type (the types run at once, so only the order within a type is
// fixed).
func triesByType(ph sdk.Phase) []tryView {
	var out []tryView
	for _, tr := range tries(ph) {
		out = append(out, tryView{tr["server"].(string), tr["type"].(string), tr["transport"].(string), tr["outcome"].(string)})
	}
	slices.SortStableFunc(out, func(a, b tryView) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// dropped returns m without the keys, and fails the test unless each one is
// present.
func dropped(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("attrs lack %q: %v", k, m)
		}
	}
	return out
}

var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestResolve(t *testing.T) {
	s := startDNS(t)
	udp, tcp, dot := s.Addr, s.Addr, s.TLSAddr
	both := func(server, transport, outcome string) []tryView {
		return []tryView{{server, "A", transport, outcome}, {server, "AAAA", transport, outcome}}
	}
	tests := []struct {
		name    string
		host    string
		values  map[string]cty.Value
		want    []netip.Addr
		class   sdk.Class
		message string         // prefix of the failure's
		attrs   map[string]any // without tries, rtt_ms and size
		tries   []tryView
	}{
		{
			name: "udp", host: "api.probe.test",
			want:  addrs("127.0.0.1", "127.0.0.2"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "ttl": 60}),
			tries: both(udp, "udp", "NOERROR"),
		},
		{
			name: "tcp", host: "API.probe.test.", values: map[string]cty.Value{"transport": cty.StringVal("tcp")},
			want:  addrs("127.0.0.1", "127.0.0.2"),
			attrs: replyAttrs(tcp, "tcp", map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "ttl": 60}),
			tries: both(tcp, "tcp", "NOERROR"),
		},
		{
			name: "tls by address", host: "api.probe.test",
			values: map[string]cty.Value{"transport": cty.StringVal("tls"), "ca_file": cty.StringVal(dotCAFile)},
			want:   addrs("127.0.0.1", "127.0.0.2"),
			attrs:  replyAttrs(dot, "tls", map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "ttl": 60}),
			tries:  both(dot, "tls", "NOERROR"),
		},
		{
			name: "tls by name", host: "api.probe.test",
			values: map[string]cty.Value{"transport": cty.StringVal("tls"), "ca_file": cty.StringVal(dotCAFile), "server_name": cty.StringVal("dns.probe.test")},
			want:   addrs("127.0.0.1", "127.0.0.2"),
			attrs:  replyAttrs(dot, "tls", map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "ttl": 60}),
			tries:  both(dot, "tls", "NOERROR"),
		},
		{
			name: "tls untrusted", host: "api.probe.test",
			values:  map[string]cty.Value{"transport": cty.StringVal("tls"), "query_types": strs("A")},
			class:   sdk.ClassDNSError,
			message: "query api.probe.test. A @" + dot + ": tls: failed to verify certificate: x509: certificate signed by unknown authority",
			attrs:   map[string]any{"transport": "tls"},
			tries:   []tryView{{dot, "A", "tls", "error"}},
		},
		{
			name: "tls wrong name", host: "api.probe.test",
			values: map[string]cty.Value{"transport": cty.StringVal("tls"), "ca_file": cty.StringVal(dotCAFile),
				"server_name": cty.StringVal("other.example"), "query_types": strs("A")},
			class:   sdk.ClassDNSError,
			message: "query api.probe.test. A @" + dot + ": tls: failed to verify certificate: x509: certificate is valid for dns.probe.test, not other.example",
			attrs:   map[string]any{"transport": "tls"},
			tries:   []tryView{{dot, "A", "tls", "error"}},
		},
		{
			name: "AAAA only", host: "v6.probe.test",
			want:  addrs("::1"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"::1"}, "ttl": 60}),
			tries: both(udp, "udp", "NOERROR"),
		},
		{
			name: "types in order", host: "both.probe.test", values: map[string]cty.Value{"query_types": strs("AAAA", "a")},
			want:  addrs("::1", "127.0.0.1"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"::1", "127.0.0.1"}, "ttl": 60}),
			tries: both(udp, "udp", "NOERROR"),
		},
		{
			name: "A only", host: "both.probe.test", values: map[string]cty.Value{"query_types": strs("A")},
			want:  addrs("127.0.0.1"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"127.0.0.1"}, "ttl": 60}),
			tries: []tryView{{udp, "A", "udp", "NOERROR"}},
		},
		{
			name: "AD bit", host: "secure.probe.test", values: map[string]cty.Value{"dnssec_ok": cty.True},
			want:  addrs("127.0.0.1"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"127.0.0.1"}, "ttl": 60, "ad": true}),
			tries: both(udp, "udp", "NOERROR"),
		},
		{
			name: "nxdomain", host: "nope.probe.test", class: sdk.ClassDNSNXDomain,
			message: "query nope.probe.test. A @" + udp + ": NXDOMAIN",
			attrs:   replyAttrs(udp, "udp", map[string]any{"rcode": "NXDOMAIN"}),
			tries:   both(udp, "udp", "NXDOMAIN"),
		},
		{
			name: "servfail", host: "servfail.probe.test", class: sdk.ClassDNSServFail,
			message: "query servfail.probe.test. A @" + udp + ": SERVFAIL",
			attrs:   replyAttrs(udp, "udp", map[string]any{"rcode": "SERVFAIL"}),
			tries:   both(udp, "udp", "SERVFAIL"),
		},
		{
			name: "refused", host: "refused.probe.test", class: sdk.ClassDNSRefused,
			message: "query refused.probe.test. A @" + udp + ": REFUSED",
			attrs:   replyAttrs(udp, "udp", map[string]any{"rcode": "REFUSED"}),
			tries:   both(udp, "udp", "REFUSED"),
		},
		{
			name: "no answer", host: "empty.probe.test", class: sdk.ClassDNSNoAnswer,
			message: "query empty.probe.test. A, AAAA @" + udp + ": no address records",
			attrs:   replyAttrs(udp, "udp", nil),
			tries:   both(udp, "udp", "NOERROR"),
		},
		{
			name: "truncated, then tcp", host: "truncated.probe.test",
			want:  addrs("127.0.0.1"),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": []string{"127.0.0.1"}, "ttl": 60, "tcp_fallback": true}),
			tries: []tryView{{udp, "A", "udp", "truncated"}, {udp, "A", "tcp", "NOERROR"}, {udp, "AAAA", "udp", "truncated"}, {udp, "AAAA", "tcp", "NOERROR"}},
		},
		{
			name: "truncated, no fallback", host: "truncated.probe.test",
			values: map[string]cty.Value{"tcp_fallback": cty.False, "query_types": strs("A")}, class: sdk.ClassDNSTruncated,
			message: "query truncated.probe.test. A @" + udp + ": truncated reply (TC set) and tcp_fallback is off",
			attrs:   replyAttrs(udp, "udp", nil),
			tries:   []tryView{{udp, "A", "udp", "truncated"}},
		},
		{
			name: "truncated, tcp silent", host: "notcp.probe.test",
			values: map[string]cty.Value{"timeout": cty.StringVal("100ms"), "query_types": strs("A")}, class: sdk.ClassDNSTruncated,
			message: "query notcp.probe.test. A @" + udp + ": truncated reply (TC set); over TCP: read tcp",
			attrs:   replyAttrs(udp, "udp", nil),
			tries:   []tryView{{udp, "A", "udp", "truncated"}, {udp, "A", "tcp", "timeout"}},
		},
		{
			name: "too big for 512", host: "many.probe.test",
			values: map[string]cty.Value{"edns_buffer_size": cty.NumberIntVal(0), "query_types": strs("A")},
			want:   manyAddrs(),
			attrs:  replyAttrs(udp, "udp", map[string]any{"addresses": addrStrings(manyAddrs()), "ttl": 60, "tcp_fallback": true}),
			tries:  []tryView{{udp, "A", "udp", "truncated"}, {udp, "A", "tcp", "NOERROR"}},
		},
		{
			name: "fits in EDNS", host: "many.probe.test", values: map[string]cty.Value{"query_types": strs("A")},
			want:  manyAddrs(),
			attrs: replyAttrs(udp, "udp", map[string]any{"addresses": addrStrings(manyAddrs()), "ttl": 60}),
			tries: []tryView{{udp, "A", "udp", "NOERROR"}},
		},
		{
			name: "malformed", host: "malformed.probe.test", class: sdk.ClassDNSMalformed,
			message: "query malformed.probe.test. A @" + udp + ": malformed reply: ",
			attrs:   map[string]any{"transport": "udp"},
			tries:   both(udp, "udp", "malformed"),
		},
		{
			name: "malformed over tcp", host: "malformed.probe.test", values: map[string]cty.Value{"transport": cty.StringVal("tcp")},
			class: sdk.ClassDNSMalformed, message: "query malformed.probe.test. A @" + tcp + ": malformed reply: ",
			attrs: map[string]any{"transport": "tcp"},
			tries: both(tcp, "tcp", "malformed"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := map[string]cty.Value{"servers": strs(udp)}
			if tt.values["transport"] == cty.StringVal("tls") {
				values["servers"] = strs(dot)
			}
			for k, v := range tt.values {
				values[k] = v
			}
			r := newResolver(t, values)
			resp, ph := resolve(t, t.Context(), r, tt.host)
			if diff := cmp.Diff(tt.want, resp.Addresses, addrComparer); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
				if !strings.HasPrefix(resp.Failure.Message, tt.message) {
					t.Errorf("message = %q, want prefix %q", resp.Failure.Message, tt.message)
				}
			}
			if class != tt.class {
				t.Errorf("class = %q, want %q (failure %v)", class, tt.class, resp.Failure)
			}
			keys := []string{"tries", "clock"}
			if _, literal := ph.Attrs["literal"]; !literal && ph.Attrs["clock"] != sdk.ClockProcess {
				t.Errorf("clock = %v, want %q", ph.Attrs["clock"], sdk.ClockProcess)
			}
			if _, replied := tt.attrs["server"]; replied {
				keys = append(keys, "rtt_ms", "size", "answer_rrs", "authority_rrs", "additional_rrs") // TestUnbound checks the counts
				rtt, size := ph.Attrs["rtt_ms"].(float64), ph.Attrs["size"].(int)
				if rtt <= 0 || rtt > float64(ph.Duration)/float64(time.Millisecond) {
					t.Errorf("rtt_ms = %v, phase %v", rtt, ph.Duration)
				}
				if size < 12 || size > dns.MaxMsgSize {
					t.Errorf("size = %d, want a DNS message's", size)
				}
			}
			if diff := cmp.Diff(tt.attrs, dropped(t, ph.Attrs, keys...)); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.tries, triesByType(ph)); diff != "" {
				t.Errorf("tries (-want +got):\n%s", diff)
			}
		})
	}
}

// replyAttrs returns the attrs of a NOERROR reply from server over transport,
// without rtt_ms, size and tries, with more set.
func replyAttrs(server, transport string, more map[string]any) map[string]any {
	m := map[string]any{"server": server, "rcode": "NOERROR", "transport": transport, "ad": false}
	if transport == "udp" {
		m["tcp_fallback"] = false
	}
	for k, v := range more {
		m[k] = v
	}
	return m
}

func manyAddrs() []netip.Addr {
	var out []netip.Addr
	for i := range 40 {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// TestMessageSize checks size and, through it, that the query carries an
// EDNS0 OPT record exactly when edns_buffer_size is set: the server echoes
// one, an 11-byte record.
func TestMessageSize(t *testing.T) {
	s := startDNS(t)
	sizes := map[int64]int{}
	for _, edns := range []int64{0, 1232, 4096} {
		r := newResolver(t, map[string]cty.Value{"servers": strs(s.Addr), "query_types": strs("A"), "edns_buffer_size": cty.NumberIntVal(edns)})
		_, ph := resolve(t, t.Context(), r, "api.probe.test")
		sizes[edns] = ph.Attrs["size"].(int)
		if tr := tries(ph); len(tr) != 1 || tr[0]["size"] != sizes[edns] {
			t.Errorf("edns %d: tries %v, want one with size %d", edns, tr, sizes[edns])
		}
	}
	// 12 header + 20 question + 2 × 30 answers (the lab does not compress
	// names), and an 11-byte OPT.
	if diff := cmp.Diff(map[int64]int{0: 92, 1232: 103, 4096: 103}, sizes); diff != "" {
		t.Errorf("sizes by edns_buffer_size (-want +got):\n%s", diff)
	}
}

func TestResolveLiteral(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, map[string]cty.Value{"servers": strs(s.Addr)})
	for _, host := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			resp, ph := resolve(t, t.Context(), r, host)
			want := netip.MustParseAddr(host).Unmap()
			if diff := cmp.Diff([]netip.Addr{want}, resp.Addresses, addrComparer); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"addresses": []string{want.String()}, "literal": true}, ph.Attrs); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
			if ph.Duration > time.Millisecond {
				t.Errorf("literal took %v", ph.Duration)
			}
		})
	}
	if n := s.Queries(); n != 0 {
		t.Errorf("server saw %d queries for literals", n)
	}
}

// within fails the test unless min <= d < min+margin.
func within(t *testing.T, what string, d, min, margin time.Duration) {
	t.Helper()
	if d < min || d >= min+margin {
		t.Errorf("%s took %v, want [%v, %v)", what, d, min, min+margin)
	}
}

func msDuration(v any) time.Duration { return time.Duration(v.(float64) * float64(time.Millisecond)) }

func TestResolveTiming(t *testing.T) {
	s := startDNS(t)
	// A delay is measured tightly; a timeout fires from a deadline that a
	// saturated machine may be late to act on, and only needs telling apart
	// from the default of 2s.
	const (
		delayMargin   = 40 * time.Millisecond
		timeoutMargin = 100 * time.Millisecond
	)

	t.Run("delay, A and AAAA at once", func(t *testing.T) {
		r := newResolver(t, map[string]cty.Value{"servers": strs(s.Addr)})
		resp, ph := resolve(t, t.Context(), r, "slow.probe.test")
		if resp.Failure != nil {
			t.Fatal(resp.Failure)
		}
		within(t, "resolve phase", ph.Duration, 30*time.Millisecond, delayMargin)
		within(t, "rtt_ms", msDuration(ph.Attrs["rtt_ms"]), 30*time.Millisecond, delayMargin)
		for _, tr := range tries(ph) {
			within(t, tr["type"].(string)+" try", msDuration(tr["rtt_ms"]), 30*time.Millisecond, delayMargin)
			within(t, tr["type"].(string)+" try start", msDuration(tr["start_ms"]), 0, delayMargin)
		}
	})

	t.Run("tls connect", func(t *testing.T) {
		r := newResolver(t, map[string]cty.Value{"servers": strs(s.TLSAddr), "transport": cty.StringVal("tls"),
			"ca_file": cty.StringVal(dotCAFile), "query_types": strs("A")})
		resp, ph := resolve(t, t.Context(), r, "slow.probe.test")
		if resp.Failure != nil {
			t.Fatal(resp.Failure)
		}
		tr := tries(ph)[0]
		connect, rtt := msDuration(tr["connect_ms"]), msDuration(tr["rtt_ms"])
		if connect <= 0 || connect > 500*time.Millisecond {
			t.Errorf("connect_ms = %v, want a TLS handshake on loopback", connect)
		}
		within(t, "rtt_ms, without the handshake", rtt, 30*time.Millisecond, delayMargin)
		within(t, "resolve phase", ph.Duration, 30*time.Millisecond+connect, delayMargin)
	})

	silent1, silent2 := startSilent(t), startSilent(t)
	tests := []struct {
		name    string
		timeout time.Duration
		retries int
		ctx     time.Duration // attempt deadline, 0 for none
		servers []string
		types   []string
		host    string
		class   sdk.Class
		tries   []tryView
		min     time.Duration // least phase duration (least total with ctx)
	}{
		{name: "silent", timeout: 150 * time.Millisecond, servers: []string{s.Addr},
			host: "silent.probe.test", class: sdk.ClassDNSTimeout, min: 150 * time.Millisecond,
			tries: []tryView{{s.Addr, "A", "udp", "timeout"}, {s.Addr, "AAAA", "udp", "timeout"}}},
		{name: "all silent", timeout: 100 * time.Millisecond, servers: []string{silent1, silent2}, types: []string{"A"},
			host: "api.probe.test", class: sdk.ClassDNSTimeout, min: 200 * time.Millisecond,
			tries: []tryView{{silent1, "A", "udp", "timeout"}, {silent2, "A", "udp", "timeout"}}},
		{name: "retries", timeout: 60 * time.Millisecond, retries: 1, servers: []string{silent1, silent2}, types: []string{"A"},
			host: "api.probe.test", class: sdk.ClassDNSTimeout, min: 240 * time.Millisecond,
			tries: []tryView{{silent1, "A", "udp", "timeout"}, {silent2, "A", "udp", "timeout"}, {silent1, "A", "udp", "timeout"}, {silent2, "A", "udp", "timeout"}}},
		{name: "retry answers", timeout: 60 * time.Millisecond, retries: 2, servers: []string{silent1, s.Addr}, types: []string{"A"},
			host: "api.probe.test", min: 60 * time.Millisecond,
			tries: []tryView{{silent1, "A", "udp", "timeout"}, {s.Addr, "A", "udp", "NOERROR"}}},
		{name: "attempt deadline", timeout: 2 * time.Second, ctx: 80 * time.Millisecond, servers: []string{s.Addr, s.Addr},
			host: "silent.probe.test", class: sdk.ClassDNSTimeout, min: 80 * time.Millisecond,
			tries: []tryView{{s.Addr, "A", "udp", "timeout"}, {s.Addr, "AAAA", "udp", "timeout"}}},
		{name: "failover from silent", timeout: 100 * time.Millisecond, servers: []string{silent1, s.Addr},
			host: "api.probe.test", min: 100 * time.Millisecond,
			tries: []tryView{{silent1, "A", "udp", "timeout"}, {s.Addr, "A", "udp", "NOERROR"}, {silent1, "AAAA", "udp", "timeout"}, {s.Addr, "AAAA", "udp", "NOERROR"}}},
		{name: "failover from closed port", timeout: 100 * time.Millisecond, servers: []string{refusedAddr(t), s.Addr}, types: []string{"A"},
			host:  "api.probe.test",
			tries: []tryView{{refusedAddr(t), "A", "udp", "error"}, {s.Addr, "A", "udp", "NOERROR"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := map[string]cty.Value{
				"servers": strs(tt.servers...),
				"timeout": cty.StringVal(tt.timeout.String()),
				"retries": cty.NumberIntVal(int64(tt.retries)),
			}
			if tt.types != nil {
				values["query_types"] = strs(tt.types...)
			}
			r := newResolver(t, values)
			begin := time.Now()
			ctx := t.Context()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			resp, ph := resolve(t, ctx, r, tt.host)
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
			}
			if class != tt.class {
				t.Fatalf("class = %q, want %q (failure %v)", class, tt.class, resp.Failure)
			}
			if diff := cmp.Diff(tt.tries, triesByType(ph), cmp.Comparer(sameTry)); diff != "" {
				t.Errorf("tries (-want +got):\n%s", diff)
			}
			for _, tr := range tries(ph) {
				if tr["outcome"] == "timeout" && tt.ctx == 0 {
					// The timeout runs from the socket's creation, a few
					// microseconds before the query is sent (a few
					// milliseconds on a busy machine under -race).
					within(t, "timed out try", msDuration(tr["rtt_ms"]), tt.timeout-5*time.Millisecond, timeoutMargin)
				}
			}
			if tt.class == "" && ph.Attrs["server"] != s.Addr {
				t.Errorf("server = %v, want %s", ph.Attrs["server"], s.Addr)
			}
			if tt.class != "" && !strings.Contains(resp.Failure.Message, "@"+tt.servers[0]+": ") {
				t.Errorf("message %q does not name %s", resp.Failure.Message, tt.servers[0])
			}
			if tt.ctx > 0 {
				// The deadline runs from ctx's creation, a little before the
				// phase starts: check that the resolution outlived it.
				if e := time.Since(begin); e < tt.min {
					t.Errorf("resolve returned after %v, before %v", e, tt.min)
				}
				within(t, "resolve phase", ph.Duration, 0, tt.min+timeoutMargin)
				return
			}
			within(t, "resolve phase", ph.Duration, tt.min, timeoutMargin)
		})
	}
}

// sameTry compares tries, taking any port of 127.0.0.1 for a refused
// server's (each refusedAddr call finds its own free port).
func sameTry(a, b tryView) bool {
	if a.Outcome == "error" && b.Outcome == "error" {
		a.Server, b.Server = "", ""
	}
	return a == b
}

// refusedAddr returns a UDP address of 127.0.0.1 where nothing was bound
// a moment ago: a query to it is refused (port unreachable).
func refusedAddr(t *testing.T) string {
	t.Helper()
	a, err := lab.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

func TestResolveCanceled(t *testing.T) {
	s := startDNS(t)
	r := newResolver(t, map[string]cty.Value{"servers": strs(s.Addr)})
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		resp, ph := resolve(t, ctx, r, "api.probe.test")
		if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
			t.Fatalf("failure = %v, want class %q", resp.Failure, sdk.ClassCanceled)
		}
		if n := len(tries(ph)); n != 0 || s.Queries() != 0 {
			t.Errorf("%d tries, server saw %d queries, want none", n, s.Queries())
		}
	})
	t.Run("during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		resp, ph := resolve(t, ctx, r, "silent.probe.test")
		if resp.Failure == nil || resp.Failure.Class != sdk.ClassCanceled {
			t.Fatalf("failure = %v, want class %q", resp.Failure, sdk.ClassCanceled)
		}
		within(t, "canceled phase", ph.Duration, 50*time.Millisecond, 100*time.Millisecond)
		if diff := cmp.Diff([]tryView{{s.Addr, "A", "udp", "canceled"}, {s.Addr, "AAAA", "udp", "canceled"}}, triesByType(ph)); diff != "" {
			t.Errorf("tries (-want +got):\n%s", diff)
		}
	})
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	one := strs("192.0.2.1")
	tlsOn := cty.StringVal("tls")
	tests := []struct {
		name    string
		values  map[string]cty.Value
		servers []string // on success
		attr    string   // of the expected *sdk.AttrError
	}{
		{name: "ports", values: map[string]cty.Value{"servers": strs("192.0.2.1", "192.0.2.2:5353", "2001:db8::1", "[2001:db8::2]:5353", "::ffff:192.0.2.3")},
			servers: []string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:53", "[2001:db8::2]:5353", "192.0.2.3:53"}},
		{name: "tcp", values: map[string]cty.Value{"servers": one, "transport": cty.StringVal("tcp")}, servers: []string{"192.0.2.1:53"}},
		{name: "tls port", values: map[string]cty.Value{"servers": strs("192.0.2.1", "192.0.2.2:8853"), "transport": tlsOn, "ca_file": cty.StringVal(dotCAFile)},
			servers: []string{"192.0.2.1:853", "192.0.2.2:8853"}},
		{name: "no servers", values: map[string]cty.Value{"servers": cty.ListValEmpty(cty.String)}, attr: "servers"},
		{name: "name", values: map[string]cty.Value{"servers": strs("dns.example:53")}, attr: "servers"},
		{name: "bad second", values: map[string]cty.Value{"servers": strs("192.0.2.1", "192.0.2.300")}, attr: "servers"},
		{name: "port zero", values: map[string]cty.Value{"servers": strs("192.0.2.1:0")}, attr: "servers"},
		{name: "port range", values: map[string]cty.Value{"servers": strs("192.0.2.1:65536")}, attr: "servers"},
		{name: "unbalanced bracket", values: map[string]cty.Value{"servers": strs("2001:db8::1]:53")}, attr: "servers"},
		{name: "transport", values: map[string]cty.Value{"servers": one, "transport": cty.StringVal("quic")}, attr: "transport"},
		{name: "server_name without tls", values: map[string]cty.Value{"servers": one, "server_name": cty.StringVal("dns.example")}, attr: "server_name"},
		{name: "ca_file without tls", values: map[string]cty.Value{"servers": one, "transport": cty.StringVal("tcp"), "ca_file": cty.StringVal(dotCAFile)}, attr: "ca_file"},
		{name: "ca_file missing", values: map[string]cty.Value{"servers": one, "transport": tlsOn, "ca_file": cty.StringVal(filepath.Join(dir, "missing.pem"))}, attr: "ca_file"},
		{name: "ca_file not PEM", values: map[string]cty.Value{"servers": one, "transport": tlsOn, "ca_file": cty.StringVal(notPEM)}, attr: "ca_file"},
		{name: "query type", values: map[string]cty.Value{"servers": one, "query_types": strs("MX")}, attr: "query_types"},
		{name: "query type twice", values: map[string]cty.Value{"servers": one, "query_types": strs("A", "a")}, attr: "query_types"},
		{name: "no query types", values: map[string]cty.Value{"servers": one, "query_types": cty.ListValEmpty(cty.String)}, attr: "query_types"},
		{name: "edns small", values: map[string]cty.Value{"servers": one, "edns_buffer_size": cty.NumberIntVal(511)}, attr: "edns_buffer_size"},
		{name: "edns big", values: map[string]cty.Value{"servers": one, "edns_buffer_size": cty.NumberIntVal(65536)}, attr: "edns_buffer_size"},
		{name: "edns fraction", values: map[string]cty.Value{"servers": one, "edns_buffer_size": cty.NumberFloatVal(1232.5)}, attr: "edns_buffer_size"},
		{name: "DO without EDNS", values: map[string]cty.Value{"servers": one, "edns_buffer_size": cty.NumberIntVal(0), "dnssec_ok": cty.True}, attr: "dnssec_ok"},
		{name: "timeout syntax", values: map[string]cty.Value{"servers": one, "timeout": cty.StringVal("2")}, attr: "timeout"},
		{name: "timeout zero", values: map[string]cty.Value{"servers": one, "timeout": cty.StringVal("0s")}, attr: "timeout"},
		{name: "timeout negative", values: map[string]cty.Value{"servers": one, "timeout": cty.StringVal("-1s")}, attr: "timeout"},
		{name: "retries negative", values: map[string]cty.Value{"servers": one, "retries": cty.NumberIntVal(-1)}, attr: "retries"},
		{name: "kernel clock", values: map[string]cty.Value{"servers": one, "clock": cty.StringVal("kernel")}, servers: []string{"192.0.2.1:53"}},
		{name: "clock", values: map[string]cty.Value{"servers": one, "clock": cty.StringVal("wall")}, attr: "clock"},
		{name: "kernel clock over tcp", values: map[string]cty.Value{"servers": one, "transport": cty.StringVal("tcp"), "clock": cty.StringVal("kernel")}, attr: "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Plugin().ResolverSchema.Config(tt.values)
			if err != nil {
				t.Fatal(err)
			}
			r, err := New(cfg)
			if tt.attr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var got []string
				for _, s := range r.servers {
					got = append(got, s.addr)
				}
				if diff := cmp.Diff(tt.servers, got); diff != "" {
					t.Errorf("servers (-want +got):\n%s", diff)
				}
				return
			}
			ae, ok := sdk.AsAttrError(err)
			if !ok || ae.Attr != tt.attr {
				t.Fatalf("New() error = %v, want an *sdk.AttrError for %q", err, tt.attr)
			}
		})
	}
}

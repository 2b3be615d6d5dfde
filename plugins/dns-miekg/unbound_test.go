package dnsmiekg

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/zclconf/go-cty/cty"
)

// unbound is a running unbound (NLnet Labs' resolver, from Debian's
// package): a DNS implementation we did not write, serving a local zone.
type unbound struct {
	addr    string // UDP and TCP, "127.0.0.1:port"
	tlsAddr string // DNS over TLS
	dohAddr string // DNS over HTTPS, at dohPath
}

// dohPath is unbound's DoH endpoint.
const dohPath = "/dns-query"

// dohURL is the URL of u's DoH endpoint, by the name its certificate holds.
func (u *unbound) dohURL() string {
	_, port, _ := net.SplitHostPort(u.dohAddr)
	return "https://dns.probe.test:" + port + dohPath
}

// unboundZone is the zone unbound serves: probe.test. and nothing else
// (the daemon package refuses every other name); startUnbound adds the
// lab's zone.probe.test. (daemon.UnboundZone: SOA, NS, MX, TXT).
const unboundZone = `
	local-zone: "probe.test." static
	local-data: "api.probe.test. 60 IN A 127.0.0.1"
	local-data: "api.probe.test. 60 IN A 127.0.0.2"
	local-data: "v6.probe.test. 60 IN AAAA ::1"
	local-data: "both.probe.test. 60 IN A 127.0.0.1"
	local-data: "both.probe.test. 30 IN AAAA ::1"
	local-data: "txt.probe.test. 60 IN TXT \"no address here\""
`

// startUnbound runs unbound (internal/lab/daemon) with unboundZone and
// many.probe.test's addresses, and DNS over TLS and HTTPS (Debian builds
// unbound with nghttp2) with a certificate from the test CA. It fails the
// test when unbound is not installed: `make deps` installs it.
func startUnbound(t *testing.T) *unbound {
	t.Helper()
	dir := t.TempDir()
	cert := dotCert(t)
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, keyFile: {Type: "PRIVATE KEY", Bytes: key}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var zone strings.Builder
	zone.WriteString(unboundZone)
	zone.WriteString(daemon.UnboundZone)
	for _, a := range manyAddrs() {
		fmt.Fprintf(&zone, "\tlocal-data: \"many.probe.test. 60 IN A %s\"\n", a)
	}
	d, err := daemon.StartUnbound(daemon.UnboundConfig{Zone: zone.String(), CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &unbound{addr: d.Addr.String(), tlsAddr: d.DoT.String(), dohAddr: d.DoH.String()}
}

// TestUnbound checks the resolver against unbound, over each transport.
func TestUnbound(t *testing.T) {
	u := startUnbound(t)
	type want struct {
		addrs []netip.Addr
		class sdk.Class
		attrs map[string]any // without tries, rtt_ms and size
		tries []tryView
	}
	cases := []struct {
		name   string
		host   string
		values map[string]cty.Value
		want   func(server, transport string) want
	}{
		{name: "A", host: "api.probe.test", values: map[string]cty.Value{"query_types": strs("A")},
			want: func(server, transport string) want {
				return want{addrs: addrs("127.0.0.1", "127.0.0.2"),
					// Two A records; in the additional section, the OPT
					// record unbound answers the query's with.
					attrs: replyAttrs(server, transport, map[string]any{"addresses": []string{"127.0.0.1", "127.0.0.2"}, "ttl": 60,
						"answer_rrs": 2, "authority_rrs": 0, "additional_rrs": 1}),
					tries: []tryView{{server, "A", transport, "NOERROR"}}}
			}},
		{name: "A and AAAA", host: "both.probe.test",
			want: func(server, transport string) want {
				return want{addrs: addrs("127.0.0.1", "::1"),
					attrs: replyAttrs(server, transport, map[string]any{"addresses": []string{"127.0.0.1", "::1"}, "ttl": 30}),
					tries: []tryView{{server, "A", transport, "NOERROR"}, {server, "AAAA", transport, "NOERROR"}}}
			}},
		{name: "nxdomain", host: "nope.probe.test", values: map[string]cty.Value{"query_types": strs("A")},
			want: func(server, transport string) want {
				return want{class: sdk.ClassDNSNXDomain, attrs: replyAttrs(server, transport, map[string]any{"rcode": "NXDOMAIN"}),
					tries: []tryView{{server, "A", transport, "NXDOMAIN"}}}
			}},
		{name: "no answer", host: "txt.probe.test",
			want: func(server, transport string) want {
				return want{class: sdk.ClassDNSNoAnswer, attrs: replyAttrs(server, transport, nil),
					tries: []tryView{{server, "A", transport, "NOERROR"}, {server, "AAAA", transport, "NOERROR"}}}
			}},
		{name: "refused outside the zone", host: "example.com", values: map[string]cty.Value{"query_types": strs("A")},
			want: func(server, transport string) want {
				return want{class: sdk.ClassDNSRefused, attrs: replyAttrs(server, transport, map[string]any{"rcode": "REFUSED"}),
					tries: []tryView{{server, "A", transport, "REFUSED"}}}
			}},
		{name: "too big for 512", host: "many.probe.test", values: map[string]cty.Value{"query_types": strs("A"), "edns_buffer_size": cty.NumberIntVal(0)},
			want: func(server, transport string) want {
				w := want{addrs: manyAddrs(), attrs: replyAttrs(server, transport, map[string]any{"addresses": addrStrings(manyAddrs()), "ttl": 60,
					"answer_rrs": 40, "authority_rrs": 0, "additional_rrs": 0}), // no OPT asked, none answered
					tries: []tryView{{server, "A", transport, "NOERROR"}}}
				if transport == "udp" { // unbound truncates; the resolver asks again over TCP
					w.attrs["tcp_fallback"] = true
					w.tries = []tryView{{server, "A", "udp", "truncated"}, {server, "A", "tcp", "NOERROR"}}
				}
				return w
			}},
		{name: "EDNS and DO", host: "many.probe.test", values: map[string]cty.Value{"query_types": strs("A"), "dnssec_ok": cty.True},
			want: func(server, transport string) want {
				return want{addrs: manyAddrs(), attrs: replyAttrs(server, transport, map[string]any{"addresses": addrStrings(manyAddrs()), "ttl": 60}),
					tries: []tryView{{server, "A", transport, "NOERROR"}}}
			}},
	}
	transports := []struct {
		transport string
		server    string
		values    map[string]cty.Value
	}{
		{"udp", u.addr, nil},
		{"tcp", u.addr, nil},
		{"tls", u.tlsAddr, map[string]cty.Value{"ca_file": cty.StringVal(dotCAFile)}},
		{"tls", u.tlsAddr, map[string]cty.Value{"ca_file": cty.StringVal(dotCAFile), "server_name": cty.StringVal("dns.probe.test")}},
		{"doh", u.dohAddr, map[string]cty.Value{"ca_file": cty.StringVal(dotCAFile), "url": cty.StringVal(u.dohURL())}},
		{"doh", u.dohAddr, map[string]cty.Value{"ca_file": cty.StringVal(dotCAFile), "url": cty.StringVal(u.dohURL()), "method": cty.StringVal("POST")}},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			name := tr.transport + "/" + tc.name
			if tr.values["server_name"] != cty.NilVal {
				name = tr.transport + " by name/" + tc.name
			}
			if tr.values["method"] != cty.NilVal {
				name = tr.transport + " POST/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				values := map[string]cty.Value{"servers": strs(tr.server), "transport": cty.StringVal(tr.transport)}
				for _, m := range []map[string]cty.Value{tr.values, tc.values} {
					for k, v := range m {
						values[k] = v
					}
				}
				w := tc.want(tr.server, tr.transport)
				resp, ph := resolve(t, t.Context(), newResolver(t, values), tc.host)
				// unbound rotates the records of an RRset (rrset-roundrobin),
				// so the order within a type is not fixed.
				sortAddrs := cmpopts.SortSlices(func(a, b netip.Addr) bool { return a.Less(b) })
				sortStrings := cmpopts.SortSlices(func(a, b string) bool { return netip.MustParseAddr(a).Less(netip.MustParseAddr(b)) })
				if diff := cmp.Diff(w.addrs, resp.Addresses, addrComparer, sortAddrs); diff != "" {
					t.Errorf("addresses (-want +got):\n%s", diff)
				}
				var class sdk.Class
				if resp.Failure != nil {
					class = resp.Failure.Class
				}
				if class != w.class {
					t.Errorf("class = %q, want %q (failure %v)", class, w.class, resp.Failure)
				}
				ignore := []string{"tries", "rtt_ms", "size"}
				if _, ok := w.attrs["answer_rrs"]; !ok {
					ignore = append(ignore, "answer_rrs", "authority_rrs", "additional_rrs")
				}
				w.attrs["clock"] = sdk.ClockProcess
				if tr.transport == "doh" { // the connection's facts: TestDoH checks them
					ignore = append(ignore, "reused", "connect_ms", "tls_ms")
					w.attrs["url"], w.attrs["http_version"] = u.dohURL(), "HTTP/2.0"
					delete(w.attrs, "connect_ms")
					if ph.Attrs["reused"] == true {
						ignore = ignore[:len(ignore)-2]
					}
				}
				if diff := cmp.Diff(w.attrs, dropped(t, ph.Attrs, ignore...), sortStrings); diff != "" {
					t.Errorf("attrs (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(w.tries, triesByType(ph)); diff != "" {
					t.Errorf("tries (-want +got):\n%s", diff)
				}
			})
		}
	}

	t.Run("tls untrusted", func(t *testing.T) {
		r := newResolver(t, map[string]cty.Value{"servers": strs(u.tlsAddr), "transport": cty.StringVal("tls"), "query_types": strs("A")})
		resp, _ := resolve(t, t.Context(), r, "api.probe.test")
		if resp.Failure == nil || resp.Failure.Class != sdk.ClassDNSError || !strings.Contains(resp.Failure.Message, "x509: certificate signed by unknown authority") {
			t.Errorf("failure = %v, want dns.error for an untrusted certificate", resp.Failure)
		}
	})
	t.Run("failover to unbound", func(t *testing.T) {
		r := newResolver(t, map[string]cty.Value{"servers": strs(startSilent(t), u.addr), "timeout": cty.StringVal("50ms"), "query_types": strs("A")})
		resp, ph := resolve(t, t.Context(), r, "api.probe.test")
		if resp.Failure != nil || ph.Attrs["server"] != u.addr {
			t.Errorf("failure %v, server %v; want unbound's answer", resp.Failure, ph.Attrs["server"])
		}
	})
}

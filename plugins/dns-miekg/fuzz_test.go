package dnsmiekg

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/zclconf/go-cty/cty"
)

// fuzzClasses are the failure classes a resolution may end in when every
// query gets a reply of arbitrary bytes.
var fuzzClasses = []sdk.Class{sdk.ClassDNSNXDomain, sdk.ClassDNSServFail, sdk.ClassDNSRefused, sdk.ClassDNSNoAnswer,
	sdk.ClassDNSTimeout, sdk.ClassDNSTruncated, sdk.ClassDNSMalformed, sdk.ClassDNSError}

// packed returns m, which answers a query for fuzz.test., packed.
func packed(f *testing.F, edit func(m *dns.Msg)) []byte {
	m := new(dns.Msg)
	m.SetQuestion("fuzz.test.", dns.TypeA)
	m.Response, m.Authoritative = true, true
	edit(m)
	b, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzReply answers every query of a resolution with the fuzzer's bytes,
// over UDP and, when they set TC, over TCP: the resolver must never panic,
// and always return one resolve phase with either addresses or a DNS
// failure class, within its timeouts. Bytes of two or more start with the
// query's ID, so that the reply is taken as the query's (a datagram with
// another ID is ignored as a stray and would only test the timeout).
func FuzzReply(f *testing.F) {
	a := func(ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "fuzz.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}
	}
	f.Add(packed(f, func(m *dns.Msg) { m.Answer = []dns.RR{a("127.0.0.1")} }))
	f.Add(packed(f, func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }))
	f.Add(packed(f, func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }))
	f.Add(packed(f, func(m *dns.Msg) { m.Rcode = 11 })) // no name
	f.Add(packed(f, func(m *dns.Msg) { m.Truncated = true }))
	f.Add(packed(f, func(m *dns.Msg) { m.Question[0].Name = "other.test."; m.Answer = []dns.RR{a("127.0.0.2")} }))
	f.Add(packed(f, func(m *dns.Msg) { // AAAA records to an A query, and a CNAME
		m.Answer = []dns.RR{
			&dns.CNAME{Hdr: dns.RR_Header{Name: "fuzz.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "x.test."},
			&dns.AAAA{Hdr: dns.RR_Header{Name: "x.test.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("::1")},
		}
	}))
	f.Add(packed(f, func(m *dns.Msg) { // oversized: larger than the advertised 1232 bytes
		for i := range 200 {
			m.Answer = append(m.Answer, a(net.IPv4(127, 0, byte(i>>8), byte(i)).String()))
		}
	}))
	f.Add([]byte{})
	f.Add([]byte{0x12})
	f.Add([]byte{0x12, 0x34, 0x81, 0x80})                                           // a header cut short
	f.Add([]byte{0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff})             // a pointer past the end
	f.Add([]byte{0, 0, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}) // a pointer to itself
	f.Add([]byte{0, 0, 0x84, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // counts with no records

	var reply atomic.Pointer[[]byte]
	srv, err := lab.StartRawDNS(func(q []byte) []byte {
		r := append([]byte{}, *reply.Load()...) // never nil: nil means no reply
		if len(r) >= 2 && len(q) >= 2 {
			copy(r, q[:2])
		}
		return r
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	const timeout = 200 * time.Millisecond
	r := newResolver(f, map[string]cty.Value{"servers": strs(srv.Addr), "timeout": cty.StringVal(timeout.String())})

	f.Fuzz(func(t *testing.T, b []byte) {
		reply.Store(&b)
		start := time.Now()
		resp, err := r.Resolve(context.Background(), &sdk.ResolveRequest{Host: "fuzz.test", Port: 443})
		took := time.Since(start)
		if err != nil || resp == nil {
			t.Fatalf("Resolve = %v, %v; want a response", resp, err)
		}
		// A query and its TCP fallback, each at most the timeout.
		if took > 2*timeout+time.Second {
			t.Errorf("Resolve took %v", took)
		}
		if len(resp.Phases) != 1 || resp.Phases[0].Name != sdk.PhaseResolve {
			t.Fatalf("phases %+v, want one resolve phase", resp.Phases)
		}
		ok := resp.Phases[0].OK
		switch f := resp.Failure; {
		case f == nil && (!ok || len(resp.Addresses) == 0):
			t.Fatalf("no failure, phase ok %v, addresses %v", ok, resp.Addresses)
		case f != nil && (ok || len(resp.Addresses) > 0 || f.Phase != sdk.PhaseResolve || !slices.Contains(fuzzClasses, f.Class)):
			t.Fatalf("failure %+v with phase ok %v and addresses %v", f, ok, resp.Addresses)
		}
		for _, a := range resp.Addresses {
			if !a.IsValid() || a.Is4In6() {
				t.Errorf("address %v", a)
			}
		}
	})
}

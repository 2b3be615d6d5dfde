package lab

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestDNSRootZone(t *testing.T) {
	s, err := StartDNS(".")
	if err != nil {
		t.Fatalf("StartDNS: %v", err)
	}
	defer s.Close()
	s.AddAddr("host", netip.MustParseAddr("127.0.0.7"))
	for name, want := range map[string]answer{
		"host.":    {Rcode: "NOERROR", Addrs: []string{"127.0.0.7"}},
		"missing.": {Rcode: "NXDOMAIN"}, // carries the root's SOA, which must pack
		".":        {Rcode: "NOERROR"},
	} {
		got, _, err := exchange(t, "udp", s.Addr, name, dns.TypeA, 2*time.Second)
		if err != nil {
			t.Fatalf("exchange %s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s answer (-want +got):\n%s", name, diff)
		}
	}
}

// query sends m to addr over network ("udp", "tcp" or "tcp-tls" with cfg) and returns the reply, waiting
// at most timeout.
func query(t *testing.T, network, addr string, cfg *tls.Config, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: timeout, TLSConfig: cfg}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func TestDNSTransportsAndEDNS(t *testing.T) {
	ca, err := NewCA("dot CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"dns.lab.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartDNS("lab.test.")
	if err != nil {
		t.Fatalf("StartDNS: %v", err)
	}
	defer s.Close()
	dot, err := s.ServeTLS(cert)
	if err != nil {
		t.Fatalf("ServeTLS: %v", err)
	}
	if dot != s.TLSAddr || dot == s.Addr {
		t.Errorf("ServeTLS = %s, TLSAddr %s, Addr %s", dot, s.TLSAddr, s.Addr)
	}
	var many []netip.Addr
	for i := range 40 { // 40 A records: 671 bytes compressed; 30 fit in 512
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	s.AddAddr("many", many...)
	s.AddAddr("secure", netip.MustParseAddr("127.0.0.1"))
	s.SetBehavior("secure", DNSBehavior{AD: true})
	s.AddAddr("udponly", netip.MustParseAddr("127.0.0.1"))
	s.SetBehavior("udponly", DNSBehavior{SilentTCP: true})
	tlsCfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "dns.lab.test"}

	type reply struct {
		Answers   int
		Truncated bool
		AD        bool
		EDNS      bool
		DO        bool
	}
	tests := []struct {
		name    string
		network string
		qname   string
		edns    uint16 // 0: no EDNS0
		do      bool
		want    reply
		timeout bool
	}{
		{name: "udp 512 truncates", network: "udp", qname: "many.lab.test.", want: reply{Answers: 30, Truncated: true}},
		{name: "udp EDNS fits", network: "udp", qname: "many.lab.test.", edns: 1232, want: reply{Answers: 40, EDNS: true}},
		{name: "tcp never truncates", network: "tcp", qname: "many.lab.test.", want: reply{Answers: 40}},
		{name: "tls", network: "tcp-tls", qname: "many.lab.test.", want: reply{Answers: 40}},
		{name: "DO echoed", network: "udp", qname: "secure.lab.test.", edns: 1232, do: true, want: reply{Answers: 1, AD: true, EDNS: true, DO: true}},
		{name: "AD over tls", network: "tcp-tls", qname: "secure.lab.test.", want: reply{Answers: 1, AD: true}},
		{name: "silent tcp answers udp", network: "udp", qname: "udponly.lab.test.", want: reply{Answers: 1}},
		{name: "silent tcp", network: "tcp", qname: "udponly.lab.test.", timeout: true},
		{name: "silent tls", network: "tcp-tls", qname: "udponly.lab.test.", timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tt.qname, dns.TypeA)
			if tt.edns > 0 {
				m.SetEdns0(tt.edns, tt.do)
			}
			addr := s.Addr
			if tt.network == "tcp-tls" {
				addr = dot
			}
			timeout := 5 * time.Second
			if tt.timeout {
				timeout = 300 * time.Millisecond
			}
			r, err := query(t, tt.network, addr, tlsCfg, m, timeout)
			if tt.timeout {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("exchange error = %v, want a timeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			got := reply{Answers: len(r.Answer), Truncated: r.Truncated, AD: r.AuthenticatedData}
			if opt := r.IsEdns0(); opt != nil {
				got.EDNS, got.DO = true, opt.Do()
				if opt.UDPSize() != ednsSize {
					t.Errorf("EDNS0 size %d, want %d", opt.UDPSize(), ednsSize)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("untrusted", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("secure.lab.test.", dns.TypeA)
		_, err := query(t, "tcp-tls", dot, &tls.Config{ServerName: "dns.lab.test"}, m, 5*time.Second)
		if err == nil {
			t.Fatal("a DoT query verified against the system roots succeeded")
		}
		if !errors.As(err, new(*tls.CertificateVerificationError)) {
			t.Errorf("error = %v, want a certificate verification error", err)
		}
	})
}

// TestDNSCompress: with Compress, an answer of 4,000 A records fits one
// DNS message over TCP (64 KB); written in full it would not, and the
// server could not send it.
func TestDNSCompress(t *testing.T) {
	s, err := StartDNS("lab.test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addrs := make([]netip.Addr, 4000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
	}
	s.AddAddr("many", addrs...)
	s.SetBehavior("many", DNSBehavior{Compress: true})
	a, _, err := exchange(t, "tcp", s.Addr, "many.lab.test.", dns.TypeA, time.Second)
	if err != nil || len(a.Addrs) != len(addrs) || a.Addrs[3999] != addrs[3999].String() {
		t.Fatalf("over TCP: %d addresses, %v; want %d", len(a.Addrs), err, len(addrs))
	}
	a, _, err = exchange(t, "udp", s.Addr, "many.lab.test.", dns.TypeA, time.Second)
	if err != nil || !a.Truncated {
		t.Errorf("over UDP: %+v, %v; want it truncated", a, err)
	}
}

package lab

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestDNSWildcard(t *testing.T) {
	s, err := StartDNS("lab.test.")
	if err != nil {
		t.Fatalf("StartDNS: %v", err)
	}
	defer s.Close()
	s.AddAddr("*", netip.MustParseAddr("127.0.0.9"))
	s.AddAddr("own", netip.MustParseAddr("127.0.0.2"))
	s.SetBehavior("gone", DNSBehavior{Rcode: dns.RcodeServerFailure})
	tests := []struct {
		name  string
		qtype uint16
		want  answer
	}{
		{"t00042.lab.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.9"}}},
		{"deep.er.lab.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.9"}}},
		{"t00042.lab.test.", dns.TypeAAAA, answer{Rcode: "NOERROR"}},
		{"own.lab.test.", dns.TypeA, answer{Rcode: "NOERROR", Addrs: []string{"127.0.0.2"}}},
		{"gone.lab.test.", dns.TypeA, answer{Rcode: "SERVFAIL"}},
		{"other.example.", dns.TypeA, answer{Rcode: "REFUSED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
			got, _, err := exchange(t, "udp", s.Addr, tt.name, tt.qtype, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartOnAddress(t *testing.T) {
	ca, err := NewCA("addr CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"api.lab.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	free, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDNSOn(free, "lab.test.")
	if err != nil {
		t.Fatalf("StartDNSOn: %v", err)
	}
	defer d.Close()
	if d.Addr != free.String() {
		t.Errorf("DNS Addr = %s, want %s", d.Addr, free)
	}
	s, err := StartTLS(TLSOptions{Cert: cert, Addr: netip.AddrPortFrom(free.Addr(), 0)})
	if err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	defer s.Close()
	if s.Addr.Addr() != free.Addr() || s.Addr.Port() == 0 {
		t.Errorf("TLS Addr = %s, want %s on a free port", s.Addr, free.Addr())
	}
}

package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	ttl = 60
	// ednsSize is the UDP payload size the server advertises in its EDNS0 replies.
	ednsSize = 1232
)

// DNSServer is an authoritative miekg/dns server on 127.0.0.1, UDP and TCP on the same port, and on request
// DNS over TLS on a port of its own (ServeTLS).
//
// Names not in the zone data and with no behavior get NXDOMAIN. A name that exists with no record of the
// asked type gets NOERROR with an empty answer. A name outside the zone gets REFUSED. A query with EDNS0
// gets an EDNS0 reply echoing its DO bit; a UDP reply larger than the query's payload size (512 bytes
// without EDNS0) is truncated as RFC 1035 and RFC 6891 say: records dropped and TC set.
type DNSServer struct {
	Addr    string // "127.0.0.1:port" (the address StartDNSOn was given), UDP and TCP
	TLSAddr string // "127.0.0.1:port" of DNS over TLS; "" until ServeTLS

	zone    string
	servers []*dns.Server
	served  chan error // one value per server when it stops serving
	done    chan struct{}
	queries atomic.Int64

	mu        sync.Mutex
	addrs     map[string][]netip.Addr
	behaviors map[string]DNSBehavior
}

// DNSBehavior says how a DNSServer answers a name. The zero value answers normally.
type DNSBehavior struct {
	Delay     time.Duration // wait before answering
	Rcode     int           // e.g. dns.RcodeServerFailure, dns.RcodeRefused; 0 = answer normally
	Silent    bool          // never answer
	SilentTCP bool          // never answer over TCP or TLS; UDP answers as the other fields say
	Truncate  bool          // set TC and send no answers over UDP (TCP answers normally)
	Malformed bool          // send bytes that do not parse as a DNS message
	AD        bool          // set the AD bit, as a validating resolver does for secure data
	// Compress compresses the reply's names, as most servers do: an answer of
	// 4,000 A records then fits the 64 KB of a DNS message over TCP. Without
	// it the lab writes every name in full.
	Compress bool
}

// StartDNS starts an authoritative server for zone (like "probe.test.", or "." for the root) on a free 127.0.0.1
// port and returns once it serves.
func StartDNS(zone string) (*DNSServer, error) {
	return StartDNSOn(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), zone)
}

// StartDNSOn is StartDNS on addr, UDP and TCP; port 0 picks a free port. The delay link (internal/lab/netlab)
// serves on its far side's address, port 53.
func StartDNSOn(addr netip.AddrPort, zone string) (*DNSServer, error) {
	pc, ln, err := listenDNS(addr)
	if err != nil {
		return nil, err
	}
	s := &DNSServer{
		Addr:      pc.LocalAddr().String(),
		zone:      canonical(zone),
		served:    make(chan error, 3),
		done:      make(chan struct{}),
		addrs:     make(map[string][]netip.Addr),
		behaviors: make(map[string]DNSBehavior),
	}
	if err := s.activate(&dns.Server{PacketConn: pc, Handler: s}); err != nil {
		pc.Close()
		ln.Close()
		return nil, fmt.Errorf("serve DNS on %s: %w", s.Addr, err)
	}
	if err := s.activate(&dns.Server{Listener: ln, Handler: s}); err != nil {
		ln.Close()
		return nil, errors.Join(fmt.Errorf("serve DNS on %s: %w", s.Addr, err), s.Close())
	}
	return s, nil
}

// ServeTLS starts serving DNS over TLS (RFC 7858) with cert on a free 127.0.0.1 port, sets TLSAddr and
// returns it. Close stops it with the rest.
func (s *DNSServer) ServeTLS(cert tls.Certificate) (string, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "", fmt.Errorf("listen DNS over TLS: %w", err)
	}
	if err := s.activate(&dns.Server{Listener: ln, Handler: s}); err != nil {
		ln.Close()
		return "", fmt.Errorf("serve DNS over TLS on %s: %w", ln.Addr(), err)
	}
	s.TLSAddr = ln.Addr().String()
	return s.TLSAddr, nil
}

// activate starts srv and returns once it serves, or with the error that stopped it.
func (s *DNSServer) activate(srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { s.served <- srv.ActivateAndServe() }()
	select {
	case <-started:
		s.servers = append(s.servers, srv)
		return nil
	case err := <-s.served:
		return err
	}
}

// listenDNS binds UDP on addr, then TCP on the same port.
func listenDNS(addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	var err error
	for range 10 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", addr.String())
		if err != nil {
			return nil, nil, fmt.Errorf("listen DNS: %w", err)
		}
		// Hundreds of queries at once (the scale benchmark) overflow the default buffer; the kernel caps
		// the size at net.core.rmem_max.
		_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
		var ln net.Listener
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, fmt.Errorf("listen DNS: %w", err)
}

// AddAddr adds A records for IPv4 and AAAA records for IPv6 addresses to name, relative ("api") or FQDN.
// Name "*" is the zone's wildcard: it answers every name that has no records or behavior of its own.
func (s *DNSServer) AddAddr(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = s.fqdn(name)
	for _, a := range addrs {
		s.addrs[name] = append(s.addrs[name], a.Unmap())
	}
}

// SetBehavior sets how name is answered; "*" sets the default for all names. A name with a behavior exists.
func (s *DNSServer) SetBehavior(name string, b DNSBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "*" {
		name = s.fqdn(name)
	}
	s.behaviors[name] = b
}

// Queries returns the number of queries received so far, answered or not.
func (s *DNSServer) Queries() int64 { return s.queries.Load() }

// Close stops every server, abandoning delayed answers, and waits for their goroutines.
func (s *DNSServer) Close() error {
	close(s.done)
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("shut down DNS %s: %w", s.Addr, err))
		}
	}
	for range s.servers {
		if err := <-s.served; err != nil {
			errs = append(errs, fmt.Errorf("serve DNS %s: %w", s.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// ServeDNS implements dns.Handler.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1) // before any reply, so that a client that got one sees it counted
	m := new(dns.Msg)
	m.SetReply(req)
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	if !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}
	s.mu.Lock()
	b, named := s.behaviors[name]
	if !named {
		b = s.behaviors["*"]
	}
	addrs := s.addrs[name]
	if len(addrs) == 0 && !named {
		addrs = s.addrs[s.fqdn("*")]
	}
	s.mu.Unlock()

	if b.Delay > 0 {
		t := time.NewTimer(b.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.done:
			return
		}
	}
	_, udp := w.LocalAddr().(*net.UDPAddr)
	m.Authoritative = true
	m.AuthenticatedData = b.AD
	m.Compress = b.Compress
	switch {
	case b.Silent, b.SilentTCP && !udp:
		return
	case b.Malformed:
		w.Write(malformed(req.Id))
		return
	case b.Rcode != dns.RcodeSuccess:
		m.Rcode = b.Rcode
	case b.Truncate && udp:
		m.Truncated = true
	case !named && len(addrs) == 0 && name != s.zone:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
	default:
		for _, a := range addrs {
			hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
			switch {
			case a.Is4() && q.Qtype == dns.TypeA:
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			case a.Is6() && q.Qtype == dns.TypeAAAA:
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{s.soa()}
		}
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
		size = max(int(opt.UDPSize()), size)
	}
	if udp {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// soa is the zone's SOA record, sent in the authority section of negative answers.
func (s *DNSServer) soa() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      s.fqdn("ns"),
		Mbox:    s.fqdn("hostmaster"),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// fqdn makes name absolute in the zone unless it already is.
func (s *DNSServer) fqdn(name string) string {
	if dns.IsFqdn(name) {
		return canonical(name)
	}
	return canonical(dns.Fqdn(name) + strings.TrimPrefix(s.zone, "."))
}

func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// malformed is a response header with the query's ID claiming one question, followed by a compression
// pointer past the end of the message, so no parser gets beyond the header.
func malformed(id uint16) []byte {
	return []byte{byte(id >> 8), byte(id), 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff}
}

var _ dns.Handler = (*DNSServer)(nil)

package lab

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func TestTrickleTLS(t *testing.T) {
	ca, err := NewCA("trickle CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"api.probe.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		interval time.Duration
		deadline time.Duration
		ok       bool
		minBytes int64 // read before the deadline
		maxBytes int64
	}{
		// 350 ms at 100 ms a byte: three bytes, four on a late deadline.
		{"choked", 100 * time.Millisecond, 350 * time.Millisecond, false, 2, 4},
		{"fast enough", time.Microsecond, 10 * time.Second, true, 500, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartTrickleTLS(cert, tt.interval)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			raw, err := net.Dial("tcp", s.Addr.String())
			if err != nil {
				t.Fatal(err)
			}
			cc := &countingConn{Conn: raw}
			c := tls.Client(cc, &tls.Config{ServerName: "api.probe.test", RootCAs: ca.Pool()})
			defer c.Close()
			start := time.Now()
			c.SetDeadline(start.Add(tt.deadline))
			err = c.Handshake()
			took := time.Since(start)
			var ne net.Error
			if (err == nil) != tt.ok || (err != nil && !(errors.As(err, &ne) && ne.Timeout())) {
				t.Fatalf("handshake: %v after %v, want ok %v (else a timeout)", err, took, tt.ok)
			}
			if !tt.ok && (took < tt.deadline || took > tt.deadline+margin) {
				t.Errorf("handshake gave up after %v, want the deadline %v", took, tt.deadline)
			}
			if n := cc.n.Load(); n < tt.minBytes || n > tt.maxBytes {
				t.Errorf("read %d bytes, want [%d, %d]", n, tt.minBytes, tt.maxBytes)
			}
		})
	}
	t.Run("closed mid-pause", func(t *testing.T) {
		s, err := StartTrickleTLS(cert, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", s.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		handshake := make(chan error, 1)
		go func() { handshake <- tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake() }()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if took := time.Since(start); took > margin {
			t.Errorf("Close took %v, want it not to wait for the pause", took)
		}
		if err := <-handshake; err == nil {
			t.Error("handshake with a closed server succeeded")
		}
	})
}

func TestIssueChain(t *testing.T) {
	ca, err := NewCA("chain CA")
	if err != nil {
		t.Fatal(err)
	}
	const size = 100 << 10
	cert, err := ca.IssueChain([]string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 3, size)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, der := range cert.Certificate {
		total += len(der)
	}
	if len(cert.Certificate) != 4 || total < size || total > size+8<<10 {
		t.Errorf("%d certificates of %d bytes, want 4 of at least %d", len(cert.Certificate), total, size)
	}
	s, err := StartTLS(TLSOptions{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := tls.Dial("tcp", s.Addr.String(), &tls.Config{ServerName: "api.probe.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("handshake with a %d-byte chain: %v", total, err)
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	if len(certs) != 4 || certs[0].Subject.CommonName != "api.probe.test" {
		t.Fatalf("peer certificates %d, leaf %v", len(certs), certs[0].Subject)
	}
	chains := c.ConnectionState().VerifiedChains
	if len(chains) != 1 || len(chains[0]) != 5 || !chains[0][4].Equal(ca.Cert) {
		t.Errorf("verified chains %v, want leaf, three intermediates and the CA", chains)
	}
	if _, err := x509.ParseCertificate(cert.Certificate[3]); err != nil {
		t.Error(err)
	}
}

// TestIssueSubject: a certificate whose issuer (the CA's name), subject and
// DNS names hold control characters is issued, served and read back as it
// was written, as a hostile server would present it.
func TestIssueSubject(t *testing.T) {
	const evil = "x\x1b]0;pwned\x07\x1b[2J"
	ca, err := NewCA("CA " + evil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"api.probe.test", evil}
	cert, err := ca.IssueSubject(pkix.Name{CommonName: "api.probe.test", Organization: []string{evil}}, names, nil,
		time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartTLS(TLSOptions{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := tls.Dial("tcp", s.Addr.String(), &tls.Config{ServerName: "api.probe.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if leaf.Issuer.CommonName != "CA "+evil || !slices.Equal(leaf.Subject.Organization, []string{evil}) || !slices.Equal(leaf.DNSNames, names) {
		t.Errorf("leaf issuer %q, subject %q, names %q", leaf.Issuer, leaf.Subject, leaf.DNSNames)
	}
}

func TestRawDNS(t *testing.T) {
	// The reply: the query's header with QR set and its question echoed,
	// its ID plus one when the name is wrongid.test, nothing for silent.test.
	s, err := StartRawDNS(func(q []byte) []byte {
		m := new(dns.Msg)
		if m.Unpack(q) != nil || len(m.Question) != 1 {
			return []byte{0xde, 0xad}
		}
		switch m.Question[0].Name {
		case "silent.test.":
			return nil
		case "wrongid.test.":
			m.Id++
		}
		m.Response = true
		out, _ := m.Pack()
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name    string
			wantErr error
			timeout bool
		}{
			{"ok.test.", nil, false},
			{"wrongid.test.", dns.ErrId, network == "udp"}, // miekg's client ignores a stray over UDP
			{"silent.test.", nil, true},
		} {
			t.Run(network+" "+tc.name, func(t *testing.T) {
				c := &dns.Client{Net: network, Timeout: 200 * time.Millisecond}
				m := new(dns.Msg)
				m.SetQuestion(tc.name, dns.TypeA)
				r, _, err := c.Exchange(m, s.Addr)
				var ne net.Error
				switch {
				case tc.timeout:
					if !errors.As(err, &ne) || !ne.Timeout() {
						t.Errorf("Exchange = %v, %v; want a timeout", r, err)
					}
				case tc.wantErr != nil:
					if !errors.Is(err, tc.wantErr) {
						t.Errorf("Exchange = %v; want %v", err, tc.wantErr)
					}
				case err != nil || r.Id != m.Id:
					t.Errorf("Exchange = %v, %v", r, err)
				}
			})
		}
	}
}

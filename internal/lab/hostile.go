package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Hostile servers: what a probe meets on a bad day, each on 127.0.0.1. They
// complement the misbehaviours of the standard lab's servers (TLSOptions.Reset,
// DNSBehavior.Silent, ...).

// TrickleTLSServer is a TLS server that sends everything, its handshake
// first, one byte per interval, as a server behind a choked link or a
// slowloris in reverse would. After the handshake it reads until the client
// closes.
type TrickleTLSServer struct {
	Addr netip.AddrPort

	acceptor *acceptor
	done     chan struct{} // closed by Close, ends the pauses
}

// StartTrickleTLS starts a TrickleTLSServer with cert on a free 127.0.0.1
// port.
func StartTrickleTLS(cert tls.Certificate, interval time.Duration) (*TrickleTLSServer, error) {
	done := make(chan struct{})
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	a, err := listen("127.0.0.1:0", func(c net.Conn) {
		tc := tls.Server(&trickleConn{Conn: c, interval: interval, done: done}, cfg)
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	})
	if err != nil {
		return nil, err
	}
	return &TrickleTLSServer{Addr: a.addr, acceptor: a, done: done}, nil
}

// Close stops the server, closes its connections and waits for their
// goroutines.
func (s *TrickleTLSServer) Close() error {
	close(s.done)
	return s.acceptor.close()
}

// trickleConn writes one byte per interval.
type trickleConn struct {
	net.Conn
	interval time.Duration
	done     <-chan struct{}
}

func (c *trickleConn) Write(b []byte) (int, error) {
	t := time.NewTimer(c.interval)
	defer t.Stop()
	for i := range b {
		t.Reset(c.interval)
		select {
		case <-t.C:
		case <-c.done:
			return i, net.ErrClosed
		}
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

// paddingOID is a private extension that IssueChain pads certificates
// with; not critical, so verifiers skip it.
var paddingOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}

// IssueChain returns a leaf certificate for names and ips, valid from an
// hour ago for a day, issued through a chain of intermediates CAs below ca
// (each issuing the next), with the intermediates in the returned chain
// after the leaf, as a server sends them. Every certificate carries a
// non-critical padding extension, so that the chain's DER adds up to at
// least size bytes: a large chain, for testing clients' limits.
func (ca *CA) IssueChain(names []string, ips []net.IP, intermediates, size int) (tls.Certificate, error) {
	pad := []pkix.Extension{{Id: paddingOID, Value: make([]byte, size/(intermediates+1))}}
	now := time.Now()
	issue := func(tmpl, parent *x509.Certificate, parentKey any) (*x509.Certificate, []byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("generate key: %w", err)
		}
		tmpl.NotBefore, tmpl.NotAfter, tmpl.ExtraExtensions = now.Add(-time.Hour), now.Add(24*time.Hour), pad
		cert, der, err := create(tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("issue certificate %q: %w", tmpl.Subject.CommonName, err)
		}
		return cert, der, key, nil
	}
	parent, parentKey := ca.Cert, any(ca.key)
	var up [][]byte // the intermediates, the one below ca first
	for i := range intermediates {
		cert, der, key, err := issue(&x509.Certificate{
			Subject:               pkix.Name{CommonName: fmt.Sprintf("probe lab intermediate %d", i+1), Organization: []string{"probe lab"}},
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}, parent, parentKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		up = append(up, der)
		parent, parentKey = cert, key
	}
	leaf, der, key, err := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName(names, ips)},
		DNSNames:    names,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, parent, parentKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	slices.Reverse(up)
	return tls.Certificate{Certificate: append([][]byte{der}, up...), PrivateKey: key, Leaf: leaf}, nil
}

// RawDNSServer answers DNS queries, over UDP and TCP on one 127.0.0.1 port,
// with whatever bytes its reply function returns for a query's bytes, and
// does not answer when it returns nil: a broken or hostile server. Over TCP
// a reply longer than 65535 bytes is cut to fit its length prefix.
type RawDNSServer struct {
	Addr string // "127.0.0.1:port", UDP and TCP

	pc       net.PacketConn
	acceptor *acceptor
	wg       sync.WaitGroup
}

// StartRawDNS starts a RawDNSServer; reply must be safe for concurrent use.
func StartRawDNS(reply func(query []byte) []byte) (*RawDNSServer, error) {
	pc, ln, err := listenDNS(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0))
	if err != nil {
		return nil, err
	}
	s := &RawDNSServer{Addr: pc.LocalAddr().String(), pc: pc}
	s.acceptor = &acceptor{addr: ln.Addr().(*net.TCPAddr).AddrPort(), ln: ln, conns: map[net.Conn]struct{}{}}
	s.acceptor.serve = func(c net.Conn) {
		for {
			var n uint16
			if binary.Read(c, binary.BigEndian, &n) != nil {
				return
			}
			q := make([]byte, n)
			if _, err := io.ReadFull(c, q); err != nil {
				return
			}
			if r := reply(q); r != nil {
				r = r[:min(len(r), 0xffff)]
				if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...)); err != nil {
					return
				}
			}
		}
	}
	s.acceptor.wg.Add(1)
	go s.acceptor.loop()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 0xffff)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if r := reply(buf[:n]); r != nil {
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	return s, nil
}

// Close stops the server and waits for its goroutines.
func (s *RawDNSServer) Close() error {
	err := errors.Join(s.pc.Close(), s.acceptor.close())
	s.wg.Wait()
	return err
}

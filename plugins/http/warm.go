package httphandshake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// warmOnce runs warm once per process: New calls it, so a run's handshake
// components are configured, and the process warmed, before any attempt.
var warmOnce sync.Once

// warmUp is what New calls through warmOnce.
func warmUp() { _ = warm() }

// warm runs the plugin's own exchange twice in memory, client and server
// in this process, away from any target: HTTP/1.1 over a plain connection,
// and HTTP/2 inside TLS. Its error is for the tests: a warm-up that fails
// only leaves the first exchange cold. The first exchange of a process
// pays for what Go does once: the transport's HTTP/2 set-up, HPACK's and
// Huffman's tables, the first allocations and stack growth of every step.
// Against the lab's server on loopback, a fresh process's first http
// phase took 1.0-1.6 ms longer than the median of the next nine over
// HTTP/2 and 0.5-0.9 ms over HTTP/1.1 (medians of 20-30 processes, on a
// loaded 2-core machine); with warm, 0.1-0.5 ms. warm took 12-24 ms there
// in a process of its own, less after the tls plugin's warm-up.
func warm() error {
	cert, err := warmCert()
	if err != nil {
		return err
	}
	cfg, err := Plugin().HandshakeSchema.Config(nil)
	if err != nil {
		return err
	}
	h, err := configure(cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	plainClient, plainServer := net.Pipe()
	tlsClient, tlsServer := net.Pipe()
	l := &connListener{conns: make(chan net.Conn, 2), closed: make(chan struct{})}
	l.conns <- plainServer
	l.conns <- tls.Server(tlsServer, srv.TLSConfig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	err = warmExchange(h, plainClient)
	if err == nil {
		// The server's side of the TLS handshake runs in srv.
		tc := tls.Client(tlsClient, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err = tc.Handshake(); err == nil {
			err = warmExchange(h, tc)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; err == nil && p != "h2" {
			err = fmt.Errorf("warm-up negotiated %q, want h2", p)
		}
	}
	err = errors.Join(err, srv.Close(), plainClient.Close(), tlsClient.Close())
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// warmExchange runs h's handshake over conn and returns its failure as an
// error.
func warmExchange(h *Handshaker, conn net.Conn) error {
	resp, err := h.Handshake(context.Background(), &sdk.HandshakeRequest{Conn: conn, Host: "warm.invalid",
		Address: netip.AddrPortFrom(netip.IPv6Loopback(), 443)})
	switch {
	case err != nil:
		return err
	case resp.Failure != nil:
		return fmt.Errorf("%s: %s", resp.Failure.Class, resp.Failure.Message)
	}
	return nil
}

// warmCert returns a self-signed ECDSA P-256 certificate for the warm-up's
// server.
func warmCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe warm-up"}, DNSNames: []string{"warm.invalid"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// connListener is a net.Listener that accepts the connections sent on
// conns until it is closed: http.Server serving in memory.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.UnixAddr{Name: "warm-up", Net: "memory"} }

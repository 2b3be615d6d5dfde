package tlshandshake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
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

// warm runs one TLS 1.3 handshake in memory, client and server in this
// process, away from any target. Its error is for the tests: a warm-up that
// fails only leaves the first handshake cold. The first
// handshake of a process pays for what Go does once: its crypto's lazy
// set-up, the first allocations and stack growth of every step. Against a
// warm server on loopback, a fresh process's first handshake took 2.2-2.9
// ms where the next ones took 1.2-1.7 ms; after warm, 1.5-2.2 ms. probe's
// default is one attempt per target, so that cost would be in the tls phase
// of every target of a run, and of every first attempt. warm takes about
// 3 ms, once. The server's key is ECDSA P-256 (the lab's, and most
// servers'): the key exchange, the certificate chain's verification and
// the record layer are then those of a real handshake; an RSA server's
// signature check stays cold.
func warm() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe warm-up"}, DNSNames: []string{"warm.invalid"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	h := &Handshaker{roots: x509.NewCertPool()}
	h.roots.AddCert(cert)
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Server(server, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}).Handshake()
		_ = server.Close()
	}()
	// The plugin's own handshake, so that its code is warm too.
	resp, err := h.Handshake(context.Background(), &sdk.HandshakeRequest{Conn: client, Host: "warm.invalid",
		Address: netip.AddrPortFrom(netip.IPv6Loopback(), 443)})
	_ = client.Close()
	<-done
	switch {
	case err != nil:
		return err
	case resp.Failure != nil:
		return fmt.Errorf("%s: %s", resp.Failure.Class, resp.Failure.Message)
	}
	return nil
}

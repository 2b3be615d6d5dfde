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
	"runtime"
	"sync"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// warmState is what the process has been warmed up for; New calls warmUp
// so that it is, before any attempt.
var warmState struct {
	sync.Mutex
	warmed      bool // warm ran
	systemRoots bool // the system's roots are loaded
}

// warmUp runs warm once per process and, for a handshake without ca_file
// (systemRoots), loads the system's roots once: crypto/x509 loads them on
// first use and keeps them, and a verification with no roots of its own
// (Handshaker.roots nil) uses the same pool. Left to the first handshake,
// the load would be in its tls phase: reading and parsing the bundle
// SSL_CERT_FILE names or the distribution's, and every file of
// SSL_CERT_DIR or /etc/ssl/certs, took 28-40 ms here with Debian's 144
// roots, 8-13 ms for the bundle alone; the handshakes after it took 1.4
// ms. A pool that fails to load is not an error here: each verification
// then reports it (tls.cert_untrusted).
//
// Loading the roots allocates 1.2 MB with the bundle alone, 3.6 MB with
// /etc/ssl/certs too, nearly all garbage once parsed: warmUp collects it.
// Left to the runtime, the heap's first collection (at 4 MB) fell in the
// first attempts, and its concurrent marking took a first tls phase of 1.5
// ms to 2-20 ms on 2 cores. With ca_file the same held without the roots:
// start-up, the configuration and warm's own handshake reach 3 MB, and the
// first collection came about 40 ms into the process, in the first
// attempts (GODEBUG=gctrace=1), so warmUp collects after warm too.
func warmUp(systemRoots bool) {
	warmState.Lock()
	defer warmState.Unlock()
	collect := false
	if systemRoots && !warmState.systemRoots {
		_, _ = x509.SystemCertPool()
		warmState.systemRoots = true
		collect = true
	}
	if !warmState.warmed {
		_ = warm()
		warmState.warmed = true
		collect = true
	}
	if collect {
		runtime.GC()
	}
}

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

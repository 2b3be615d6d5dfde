package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PKI is a test CA with its files, and the openssl index and revocation
// list of the certificates it issued.
type PKI struct {
	Dir     string // where its files are
	CAFile  string // the CA certificate, PEM
	CAKey   string // its key, PEM
	ca      *x509.Certificate
	key     *ecdsa.PrivateKey
	serial  int64
	index   strings.Builder // openssl ca's index.txt
	revoked []x509.RevocationListEntry
}

// NewPKI makes a CA named name, valid for a day, in a temporary directory.
func NewPKI(tb testing.TB, name string) *PKI {
	tb.Helper()
	p := &PKI{Dir: tb.TempDir(), serial: 1}
	var err error
	if p.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		tb.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		tb.Fatal(err)
	}
	p.CAFile = p.write(tb, name+".pem", "CERTIFICATE", der)
	p.CAKey = p.writeKey(tb, name+".key", p.key)
	return p
}

func (p *PKI) write(tb testing.TB, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func (p *PKI) writeKey(tb testing.TB, name string, key *ecdsa.PrivateKey) string {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return p.write(tb, name, "PRIVATE KEY", der)
}

// Issue issues a certificate named name, valid for days, for 127.0.0.1
// (a server) or as a client, with the OCSP responder and CRL distribution
// point given, revoked an hour ago if revoked. It returns the certificate
// and key files.
func (p *PKI) Issue(tb testing.TB, name string, client bool, days int, ocspURL, crlURL string, revoked bool) (string, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Duration(days)*24*time.Hour + time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if ocspURL != "" {
		tmpl.OCSPServer = []string{ocspURL}
	}
	if crlURL != "" {
		tmpl.CRLDistributionPoints = []string{crlURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		tb.Fatal(err)
	}
	expiry := tmpl.NotAfter.UTC().Format("060102150405Z")
	if revoked {
		at := time.Now().Add(-time.Hour).Truncate(time.Second)
		p.revoked = append(p.revoked, x509.RevocationListEntry{SerialNumber: tmpl.SerialNumber, RevocationTime: at})
		fmt.Fprintf(&p.index, "R\t%s\t%s\t%X\tunknown\t/CN=%s\n", expiry, at.UTC().Format("060102150405Z"), p.serial, name)
	} else {
		fmt.Fprintf(&p.index, "V\t%s\t\t%X\tunknown\t/CN=%s\n", expiry, p.serial, name)
	}
	return p.write(tb, name+".pem", "CERTIFICATE", der), p.writeKey(tb, name+".key", key)
}

// CRL writes the CA's CRL, valid for a day, in DER.
func (p *PKI) CRL(tb testing.TB, path string) {
	tb.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(24 * time.Hour), RevokedCertificateEntries: p.revoked}, p.ca, p.key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, der, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// RevocationLab is nginx serving a certificate per port, each requiring a
// client certificate of another CA; openssl's OCSP responder answering for
// them; their CRL, served by nginx; and a responder that never answers.
type RevocationLab struct {
	CAFile                    string // the servers' CA
	ClientCert, ClientKey     string // of the CA nginx trusts for clients, good for 30 days
	StrangerCert, StrangerKey string // a client certificate of another CA
	// Servers are nginx's TLS servers (for 127.0.0.1) by name: "good",
	// "revoked", "good-stapled" and "revoked-stapled" (nginx staples the
	// responder's answer), "hang" (its OCSP responder and CRL server never
	// answer), "nowhere" (its certificate names neither).
	Servers map[string]netip.AddrPort
	// OCSP is the address of the OCSP responder the certificates name.
	OCSP netip.AddrPort
}

// StartRevocationLab starts the lab; it stops when tb ends.
func StartRevocationLab(tb testing.TB) *RevocationLab {
	tb.Helper()
	srv, cli, other := NewPKI(tb, "server-ca"), NewPKI(tb, "client-ca"), NewPKI(tb, "stranger-ca")
	l := &RevocationLab{CAFile: srv.CAFile, Servers: map[string]netip.AddrPort{}}
	l.ClientCert, l.ClientKey = cli.Issue(tb, "probe-client", true, 30, "", "", false)
	l.StrangerCert, l.StrangerKey = other.Issue(tb, "stranger", true, 30, "", "", false)

	ocspAddr, crlAddr := freeAddr(tb), freeAddr(tb)
	ocspURL, crlURL := "http://"+ocspAddr.String(), "http://"+crlAddr.String()+"/server-ca.crl"
	silent := "http://" + silentListener(tb)
	type server struct {
		name             string
		ocsp, crl        string
		revoked, stapled bool
	}
	servers := []server{
		{name: "good", ocsp: ocspURL, crl: crlURL},
		{name: "revoked", ocsp: ocspURL, crl: crlURL, revoked: true},
		{name: "good-stapled", ocsp: ocspURL, crl: crlURL, stapled: true},
		{name: "revoked-stapled", ocsp: ocspURL, crl: crlURL, revoked: true, stapled: true},
		{name: "hang", ocsp: silent, crl: silent + "/server-ca.crl"},
		{name: "nowhere"},
	}
	files := map[string][2]string{}
	for _, s := range servers {
		c, k := srv.Issue(tb, s.name, false, 90, s.ocsp, s.crl, s.revoked)
		files[s.name] = [2]string{c, k}
	}
	index := filepath.Join(srv.Dir, "index.txt")
	if err := os.WriteFile(index, []byte(srv.index.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	webroot := tb.TempDir()
	srv.CRL(tb, filepath.Join(webroot, "server-ca.crl"))
	// openssl's responder on the port the certificates name.
	responder, err := StartOCSPResponder(ocspAddr, index, srv.CAFile, srv.CAKey)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { responder.Close() })
	l.OCSP = responder.Addr
	openssl, err := program("openssl", "openssl")
	if err != nil {
		tb.Fatal(err)
	}

	var conf strings.Builder
	fmt.Fprintf(&conf, "\tserver {\n\t\tlisten %s;\n\t\troot %q;\n\t}\n", crlAddr, webroot)
	for _, s := range servers {
		addr := freeAddr(tb)
		l.Servers[s.name] = addr
		staple := ""
		if s.stapled {
			der := filepath.Join(srv.Dir, s.name+".ocsp")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, openssl, "ocsp", "-issuer", srv.CAFile, "-cert", files[s.name][0],
				"-url", "http://"+responder.Addr.String(), "-respout", der, "-noverify").CombinedOutput()
			if err != nil {
				tb.Fatalf("fetch the staple of %s: %v\n%s", s.name, err, out)
			}
			staple = fmt.Sprintf("\t\tssl_stapling on;\n\t\tssl_stapling_file %q;\n", der)
		}
		fmt.Fprintf(&conf, `	server {
		listen %s ssl;
		ssl_certificate %q;
		ssl_certificate_key %q;
		ssl_client_certificate %q;
		ssl_verify_client on;
%s		location / { return 200 "client $ssl_client_s_dn\n"; }
	}
`, addr, files[s.name][0], files[s.name][1], cli.CAFile, staple)
	}
	nginx, err := StartNginx(crlAddr, conf.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nginx.Close() })
	for _, a := range l.Servers {
		waitListen(tb, a.String())
	}
	return l
}

// freeAddr is FreePort for a test.
func freeAddr(tb testing.TB) netip.AddrPort {
	tb.Helper()
	a, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func waitListen(tb testing.TB, addr string) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nothing listens on %s", addr)
		}
	}
}

// silentListener accepts connections and never answers: a hanging OCSP
// responder and CRL server.
func silentListener(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tb.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

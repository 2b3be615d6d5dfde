package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CA is a throwaway certificate authority generated at start (ECDSA P-256).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA generates a CA named name, valid from 30 days ago for a year.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"probe lab"}},
		NotBefore:             now.Add(-30 * 24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, der, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", name, err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue returns a leaf certificate for the given DNS names and IPs valid in [notBefore, notAfter).
func (ca *CA) Issue(names []string, ips []net.IP, notBefore, notAfter time.Time) (tls.Certificate, error) {
	return ca.IssueSubject(pkix.Name{CommonName: commonName(names, ips)}, names, ips, notBefore, notAfter)
}

// IssueSubject is Issue with the leaf's subject given. The names and the
// subject are taken as they are, so a test can issue what a hostile server
// would present: a subject or a DNS name with control characters in it
// (crypto/x509 writes and reads those, as UTF8String and IA5String).
func (ca *CA) IssueSubject(subject pkix.Name, names []string, ips []net.IP, notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate leaf key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     subject,
		DNSNames:    names,
		IPAddresses: ips,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf, der, err := create(tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue certificate for %v %v: %w", names, ips, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// WritePEM writes the CA certificate in PEM to path with mode 0644.
func (ca *CA) WritePEM(path string) error {
	if err := os.WriteFile(path, ca.CertPEM, 0o644); err != nil {
		return fmt.Errorf("write CA certificate: %w", err)
	}
	return nil
}

// create signs tmpl with a random serial number and returns the parsed certificate and its DER.
func create(tmpl, parent *x509.Certificate, pub, priv any) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, der, nil
}

func commonName(names []string, ips []net.IP) string {
	switch {
	case len(names) > 0:
		return names[0]
	case len(ips) > 0:
		return ips[0].String()
	}
	return ""
}

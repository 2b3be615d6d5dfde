package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"os"
	"slices"
	"sync"
	"time"
)

// LoadRoots reads a pool of root certificates from the PEM file at path,
// the value of the attribute attr ("ca_file"); a file that cannot be read
// or holds no certificate gives an *AttrError on attr.
func LoadRoots(attr, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, AttrErrorf(attr, "Unreadable CA file", "Cannot read %s: %s.", attr, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, AttrErrorf(attr, "Invalid CA file",
			"%s %s holds no PEM certificate.", attr, path)
	}
	return pool, nil
}

// VerifyPeer verifies the leaf of certs for name against roots (nil for
// the system's), the other certificates serving as intermediates, as
// crypto/tls would. A component that verifies a peer itself, to report the
// certificate's facts also when it does not verify, calls it from
// tls.Config.VerifyConnection. It returns the verified chains.
func VerifyPeer(certs []*x509.Certificate, name string, roots *x509.CertPool) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errors.New("tls: server sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	return certs[0].Verify(opts)
}

// cipherSuiteNames are crypto/tls's names of the cipher suites it
// implements, by ID: tls.CipherSuiteName builds its list of them anew on
// every call, which every handshake reports.
var cipherSuiteNames = sync.OnceValue(func() map[uint16]string {
	names := map[uint16]string{}
	for _, c := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		names[c.ID] = c.Name
	}
	return names
})

// cipherSuiteName is tls.CipherSuiteName, without the list.
func cipherSuiteName(id uint16) string {
	if name, ok := cipherSuiteNames()[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id)
}

// AddTLSFacts adds the negotiated parameters of state, the facts of its
// leaf certificate and the verification result to attrs, as the tls
// plugin reports them (plugins/tls/README.md): version, cipher, alpn,
// resumed, verified, verify_error and the cert_ facts.
func AddTLSFacts(attrs map[string]any, state *tls.ConnectionState, verifyErr error) {
	attrs["version"] = tls.VersionName(state.Version)
	attrs["cipher"] = cipherSuiteName(state.CipherSuite)
	attrs["alpn"] = state.NegotiatedProtocol
	attrs["resumed"] = state.DidResume
	attrs["verified"] = verifyErr == nil
	if verifyErr != nil {
		attrs["verify_error"] = verifyErr.Error()
	}
	if len(state.PeerCertificates) == 0 {
		return
	}
	leaf := state.PeerCertificates[0]
	f := leafFacts(leaf)
	attrs["cert_subject"] = f.subject
	attrs["cert_issuer"] = f.issuer
	attrs["cert_not_before"] = f.notBefore
	attrs["cert_not_after"] = f.notAfter
	attrs["cert_days_left"] = int(math.Floor(time.Until(leaf.NotAfter).Hours() / 24))
	attrs["cert_sans"] = slices.Clone(f.sans) // the caller's to keep, and to change
}

// certFacts are the facts of a leaf certificate that do not change from
// one handshake to the next, formatted as AddTLSFacts reports them.
type certFacts struct {
	subject, issuer     string
	notBefore, notAfter string
	sans                []string
}

// maxCachedCerts bounds certCache: a run over more distinct certificates
// than this formats some anew, as it would with no cache.
const maxCachedCerts = 1024

// certCache holds the facts of the leaf certificates seen, by their DER
// bytes: the attempts of a target handshake with the same certificate over
// and over, and formatting its names every time was a measurable share of
// a handshake's cost (docs/performance.md, the whole process).
var certCache = struct {
	sync.Mutex
	m map[string]*certFacts
}{m: map[string]*certFacts{}}

// leafFacts returns the facts of leaf, from certCache when it was seen.
func leafFacts(leaf *x509.Certificate) *certFacts {
	certCache.Lock()
	f := certCache.m[string(leaf.Raw)]
	certCache.Unlock()
	if f != nil {
		return f
	}
	sans := make([]string, 0, len(leaf.DNSNames)+len(leaf.IPAddresses))
	sans = append(sans, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	f = &certFacts{subject: leaf.Subject.String(), issuer: leaf.Issuer.String(),
		notBefore: leaf.NotBefore.UTC().Format(time.RFC3339), notAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
		sans: sans}
	certCache.Lock()
	if len(certCache.m) >= maxCachedCerts {
		clear(certCache.m)
	}
	certCache.m[string(leaf.Raw)] = f
	certCache.Unlock()
	return f
}

// CertClass returns the failure class of a certificate verification error.
func CertClass(err error) Class {
	var (
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
		noRoots  x509.SystemRootsError
	)
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ClassTLSCertExpired
	case errors.As(err, &hostname):
		return ClassTLSCertNameMismatch
	case errors.As(err, &unknown), errors.As(err, &noRoots):
		return ClassTLSCertUntrusted
	default:
		return ClassTLSCertInvalid
	}
}

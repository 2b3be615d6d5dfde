package sdk

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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

// AddTLSFacts adds the negotiated parameters of state, the facts of its
// leaf certificate and the verification result to attrs, as the tls
// plugin reports them (plugins/tls/README.md): version, cipher, alpn,
// resumed, verified, verify_error and the cert_ facts.
func AddTLSFacts(attrs map[string]any, state *tls.ConnectionState, verifyErr error) {
	attrs["version"] = tls.VersionName(state.Version)
	attrs["cipher"] = cipherName(state.CipherSuite)
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

// LeafIDs returns the SHA-256 fingerprint of leaf and its serial number,
// in hex (the serial's bytes with their leading zeros, as
// blackbox_exporter prints it), as attribute values, from the cache of
// the facts AddTLSFacts reports: hashing the certificate on every
// handshake with it was a measurable share of what the tls plugin adds to
// a handshake.
func LeafIDs(leaf *x509.Certificate) (fingerprint, serial any) {
	f := leafFacts(leaf)
	return f.fingerprint, f.serial
}

// certFacts are the facts of a leaf certificate that do not change from
// one handshake to the next, formatted as AddTLSFacts reports them: the
// strings held as attribute values already, so that adding them to a
// handshake's attributes allocates nothing.
type certFacts struct {
	subject, issuer     any
	notBefore, notAfter any
	sans                []string
	fingerprint, serial any
}

// cipherNames holds the name of every cipher suite crypto/tls knows, by
// its ID, as attribute values: tls.CipherSuiteName lists them anew, a
// dozen allocations, on each call.
var cipherNames = sync.OnceValue(func() map[uint16]any {
	m := map[uint16]any{}
	for _, c := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if _, ok := m[c.ID]; !ok { // the first, as tls.CipherSuiteName looks
			m[c.ID] = c.Name
		}
	}
	return m
})

// cipherName is tls.CipherSuiteName(id), an attribute value.
func cipherName(id uint16) any {
	if name, ok := cipherNames()[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id)
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
	sum := sha256.Sum256(leaf.Raw)
	f = &certFacts{subject: leaf.Subject.String(), issuer: leaf.Issuer.String(),
		notBefore: leaf.NotBefore.UTC().Format(time.RFC3339), notAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
		sans: sans, fingerprint: hex.EncodeToString(sum[:]), serial: hex.EncodeToString(leaf.SerialNumber.Bytes())}
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

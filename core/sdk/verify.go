package sdk

import (
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"time"
)

// VerifyPeer verifies the leaf of certs for name against roots (nil for
// the system's), the other certificates serving as intermediates, as
// crypto/tls would. A component that verifies a peer itself, to report the
// certificate's facts also when it does not verify, calls it from
// tls.Config.VerifyConnection. It returns the verified chains, which the
// caller must not change: a verification that succeeded is remembered
// (verified), and its chains are returned again.
func VerifyPeer(certs []*x509.Certificate, name string, roots *x509.CertPool) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errors.New("tls: server sent no certificate")
	}
	now := time.Now()
	if chains := verified.lookup(certs, roots, now); chains != nil {
		// What Verify checks of the name, in its order: after the leaf's
		// validity, which lookup saw, and before the chain.
		if err := certs[0].VerifyHostname(name); err != nil {
			return nil, err
		}
		return chains, nil
	}
	opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err == nil {
		verified.add(certs, roots, chains)
	}
	return chains, err
}

// maxVerified bounds verified: a run over more distinct chains than this
// verifies some anew, as it would with no cache.
const maxVerified = 1024

// verified holds the chains of the verifications that succeeded, by the
// leaf's DER bytes. Targets are shown the same chain over and over (a
// target on each attempt, the names of a wildcard certificate all at
// once), and building and checking it anew, a signature for each link,
// was 7% of the CPU of `probe serve` over 2,000 TLS targets
// (docs/performance.md); browsers keep such a cache too. An entry answers
// only for the same certificates, byte for byte, and the same roots, and
// only while every certificate of its chains is within its validity: a
// server that changes its chain, a changed CA file (a new pool) or a
// certificate that expired since is verified anew, and a verification that
// failed always is. The name is checked on every verification.
var verified = verifiedCache{m: map[string][]*verifiedChain{}}

type verifiedCache struct {
	sync.Mutex
	n int // entries, across the leaves
	m map[string][]*verifiedChain
}

// verifiedChain is one verification that succeeded.
type verifiedChain struct {
	intermediates []*x509.Certificate // certs[1:] as the server sent them
	roots         *x509.CertPool
	chains        [][]*x509.Certificate
	from, until   time.Time // when every certificate of chains is valid
}

// lookup returns the chains of an earlier verification of certs against
// roots that is still valid at now, nil when there is none.
func (c *verifiedCache) lookup(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) [][]*x509.Certificate {
	c.Lock()
	defer c.Unlock()
	if v := c.find(certs, roots); v != nil && !now.Before(v.from) && !now.After(v.until) {
		return v.chains
	}
	return nil
}

// find returns the entry of certs and roots; c is locked.
func (c *verifiedCache) find(certs []*x509.Certificate, roots *x509.CertPool) *verifiedChain {
	for _, v := range c.m[string(certs[0].Raw)] {
		if v.roots == roots && slices.EqualFunc(v.intermediates, certs[1:], (*x509.Certificate).Equal) {
			return v
		}
	}
	return nil
}

// add remembers chains as the verification of certs against roots, in
// place of an entry that expired.
func (c *verifiedCache) add(certs []*x509.Certificate, roots *x509.CertPool, chains [][]*x509.Certificate) {
	v := &verifiedChain{intermediates: slices.Clone(certs[1:]), roots: roots, chains: chains}
	for i, chain := range chains {
		for j, cert := range chain {
			if i+j == 0 || cert.NotBefore.After(v.from) {
				v.from = cert.NotBefore
			}
			if i+j == 0 || cert.NotAfter.Before(v.until) {
				v.until = cert.NotAfter
			}
		}
	}
	c.Lock()
	defer c.Unlock()
	if old := c.find(certs, roots); old != nil {
		*old = *v // verified again: at the same time by another attempt, or since it expired
		return
	}
	if c.n >= maxVerified {
		clear(c.m)
		c.n = 0
	}
	c.m[string(certs[0].Raw)] = append(c.m[string(certs[0].Raw)], v)
	c.n++
}

package sdk

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// TestVerifyPeerRemembers checks that a chain verified once is not
// verified again for the same certificates and roots while it is valid,
// that anything else is (other roots, other intermediates, a time outside
// a certificate's validity), and that the name is checked every time.
func TestVerifyPeerRemembers(t *testing.T) {
	ca, err := lab.NewCA("verify-test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issued, err := ca.Issue([]string{"a.probe.test", "b.probe.test"}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf := issued.Leaf
	roots := ca.Pool()
	certs := []*x509.Certificate{leaf}

	first, err := VerifyPeer(certs, "a.probe.test", roots)
	if err != nil {
		t.Fatal(err)
	}
	again, err := VerifyPeer(certs, "a.probe.test", roots)
	if err != nil || len(again) == 0 || &again[0] != &first[0] {
		t.Errorf("second verification: %v, chains %p, want the first's %p, remembered", err, again, first)
	}

	// Another name of the certificate: the same chains; a name it does not
	// have: refused, as Verify refuses it.
	if chains, err := VerifyPeer(certs, "b.probe.test", roots); err != nil || &chains[0] != &first[0] {
		t.Errorf("another of its names: %v, chains %p, want the first's %p", err, chains, first)
	}
	var hostname x509.HostnameError
	if _, err := VerifyPeer(certs, "c.probe.test", roots); !errors.As(err, &hostname) {
		t.Errorf("a name it does not have: %v, want a HostnameError", err)
	}
	other, err := lab.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := VerifyPeer(certs, "a.probe.test", other.Pool()); !errors.As(err, &unknown) {
		t.Errorf("other roots: %v, want an UnknownAuthorityError", err)
	}
	// The same roots in a new pool (a reloaded CA file) are verified anew.
	if chains := verified.lookup(certs, ca.Pool(), now); chains != nil {
		t.Error("a new pool of the same roots answered from the cache")
	}
	// Other intermediates: not the verification remembered.
	if chains := verified.lookup([]*x509.Certificate{leaf, ca.Cert}, roots, now); chains != nil {
		t.Error("a chain with an intermediate more answered from the cache")
	}
	// Outside the leaf's validity, an entry answers nothing.
	for _, at := range []time.Time{leaf.NotBefore.Add(-time.Second), leaf.NotAfter.Add(time.Second)} {
		if chains := verified.lookup(certs, roots, at); chains != nil {
			t.Errorf("at %v, outside [%v, %v], the cache answered", at, leaf.NotBefore, leaf.NotAfter)
		}
	}
	if chains := verified.lookup(certs, roots, leaf.NotAfter); chains == nil {
		t.Error("at the leaf's NotAfter, still valid, the cache answered nothing")
	}
}

// TestVerifyPeerBounded checks that the cache holds at most maxVerified
// verifications.
func TestVerifyPeerBounded(t *testing.T) {
	ca, err := lab.NewCA("verify-bounded")
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue([]string{"a.probe.test"}, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for range maxVerified + 10 {
		if _, err := VerifyPeer([]*x509.Certificate{issued.Leaf}, "a.probe.test", ca.Pool()); err != nil {
			t.Fatal(err)
		}
	}
	verified.Lock()
	n, entries := verified.n, 0
	for _, v := range verified.m {
		entries += len(v)
	}
	verified.Unlock()
	if n > maxVerified || n != entries {
		t.Errorf("%d entries (counted %d), want at most %d", entries, n, maxVerified)
	}
}

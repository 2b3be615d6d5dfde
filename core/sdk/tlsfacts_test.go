package sdk_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
)

// TestTLSFactsCached checks that the facts of a certificate seen before
// are the ones of its first handshake, those of another certificate its
// own, and that a caller changing its cert_sans changes nobody else's.
func TestTLSFactsCached(t *testing.T) {
	ca, err := lab.NewCA("facts-test")
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	notAfter := time.Now().Add(50*24*time.Hour + time.Hour).Truncate(time.Second)
	issue := func(cn string, names ...string) []byte {
		c, err := ca.IssueSubject(pkix.Name{CommonName: cn}, names, []net.IP{net.IPv4(127, 0, 0, 1)}, notBefore, notAfter)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	// facts parses der anew, as a handshake does, and returns its facts.
	facts := func(der []byte) map[string]any {
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		attrs := map[string]any{}
		sdk.AddTLSFacts(attrs, &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			PeerCertificates: []*x509.Certificate{leaf}}, nil)
		return attrs
	}
	want := func(cn string, sans ...string) map[string]any {
		return map[string]any{"version": "TLS 1.3", "cipher": "TLS_AES_128_GCM_SHA256", "alpn": "", "resumed": false,
			"verified": true, "cert_subject": "CN=" + cn, "cert_issuer": "CN=facts-test,O=probe lab",
			"cert_not_before": "2026-01-02T03:04:05Z", "cert_not_after": notAfter.UTC().Format(time.RFC3339),
			"cert_days_left": 50, "cert_sans": sans}
	}
	api, web := issue("api.test", "api.test", "www.api.test"), issue("web.test", "web.test")
	for i := range 3 {
		got := facts(api)
		if diff := cmp.Diff(want("api.test", "api.test", "www.api.test", "127.0.0.1"), got); diff != "" {
			t.Errorf("handshake %d with api.test's certificate (-want +got):\n%s", i+1, diff)
		}
		got["cert_sans"].([]string)[0] = "changed.test"
		if diff := cmp.Diff(want("web.test", "web.test", "127.0.0.1"), facts(web)); diff != "" {
			t.Errorf("handshake %d with web.test's certificate (-want +got):\n%s", i+1, diff)
		}
		for _, der := range [][]byte{api, web} {
			leaf, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			fingerprint, serial := sdk.LeafIDs(leaf)
			if want := fmt.Sprintf("%x", sha256.Sum256(der)); fingerprint != want {
				t.Errorf("handshake %d: fingerprint %v, want %s", i+1, fingerprint, want)
			}
			if want := fmt.Sprintf("%x", leaf.SerialNumber.Bytes()); serial != want {
				t.Errorf("handshake %d: serial %v, want %s", i+1, serial, want)
			}
		}
	}
}

// TestTLSFactsCipher checks that the cipher attribute, whose names are
// held once, is tls.CipherSuiteName's for every ID, known or not.
func TestTLSFactsCipher(t *testing.T) {
	for id := range 1 << 16 {
		attrs := map[string]any{}
		sdk.AddTLSFacts(attrs, &tls.ConnectionState{CipherSuite: uint16(id)}, nil)
		if want := tls.CipherSuiteName(uint16(id)); attrs["cipher"] != want {
			t.Fatalf("cipher %#04x: %v, want %q", id, attrs["cipher"], want)
		}
	}
}

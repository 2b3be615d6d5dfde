package sdk

import (
	"crypto/tls"
	"math"
	"testing"
)

// TestCipherSuiteName checks that cipherSuiteName names every ID as
// crypto/tls does.
func TestCipherSuiteName(t *testing.T) {
	for id := range math.MaxUint16 + 1 {
		if got, want := cipherSuiteName(uint16(id)), tls.CipherSuiteName(uint16(id)); got != want {
			t.Fatalf("cipherSuiteName(%#04x) = %q, want %q", id, got, want)
		}
	}
}

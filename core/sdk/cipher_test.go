package sdk

import (
	"crypto/tls"
	"math"
	"testing"
)

// TestCipherName checks that cipherName names every ID as crypto/tls does.
func TestCipherName(t *testing.T) {
	for id := range math.MaxUint16 + 1 {
		if got, want := cipherName(uint16(id)), tls.CipherSuiteName(uint16(id)); got != want {
			t.Fatalf("cipherName(%#04x) = %q, want %q", id, got, want)
		}
	}
}

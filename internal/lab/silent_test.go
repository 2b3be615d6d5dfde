package lab

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSilentTCP: a dial to any address of a SilentTCP hangs until its
// deadline, a timeout and not a refusal, and keeps hanging while others do.
func TestSilentTCP(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	s, err := StartSilentTCP(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	const deadline = 200 * time.Millisecond
	for range 2 {
		for _, a := range addrs {
			start := time.Now()
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, s.Port).String(), deadline)
			took := time.Since(start)
			if err == nil {
				c.Close()
				t.Fatalf("dial %v connected", a)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || took < deadline || took > deadline+100*time.Millisecond {
				t.Errorf("dial %v: %v after %v, want a timeout after %v", a, err, took, deadline)
			}
		}
	}
}

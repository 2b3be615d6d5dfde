//go:build cgo && unix

package dnssystem

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestGetaddrinfo calls getaddrinfo(3) for localhost, which /etc/hosts
// answers without a query, and checks that canceling returns at once.
func TestGetaddrinfo(t *testing.T) {
	addrs, err := getaddrinfo("localhost", "ip4")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !a.Is4() || !a.IsLoopback() {
			t.Errorf("getaddrinfo(localhost, ip4) gave %v", a)
		}
	}
	if len(addrs) == 0 {
		t.Error("getaddrinfo(localhost, ip4) gave no address")
	}

	r := &Resolver{network: "ip"}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	_, err = r.lookupPlatform(ctx, "localhost")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout || time.Since(start) > 10*time.Millisecond {
		t.Errorf("canceled lookup: %v after %v, want a DNS error at once", err, time.Since(start))
	}
}

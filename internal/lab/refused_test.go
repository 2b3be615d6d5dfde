package lab

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestRefusedPort checks that a connect to a held RefusedPort is refused,
// that no server can take its port while it is held (the kernel hands out
// no port in use for any free port either), and that it is free again
// once closed.
func TestRefusedPort(t *testing.T) {
	r, err := ReserveRefused()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", r.Addr.String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s: %v, want ECONNREFUSED", r.Addr, err)
	}
	if ln, err := net.Listen("tcp", r.Addr.String()); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			ln.Close()
		}
		t.Fatalf("listen on the held %s: %v, want EADDRINUSE", r.Addr, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.Addr.String())
	if err != nil {
		t.Fatalf("listen on %s once released: %v", r.Addr, err)
	}
	ln.Close()
}

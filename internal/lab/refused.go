package lab

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
)

// RefusedPort is a port of 127.0.0.1 where a connect is refused for as
// long as it is held: a TCP socket bound to it that does not listen. The
// kernel answers a SYN to it with a reset, and hands the port to no other
// socket that asks for any free port. FreeAddr's port, free when it
// returns, may be handed to another test's server a moment later; one
// was, and a check that wanted a refusal connected (TestPluginsCheck).
type RefusedPort struct {
	Addr netip.AddrPort
	fd   int
}

// ReserveRefused binds a RefusedPort.
func ReserveRefused() (*RefusedPort, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("refused port: socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("refused port: bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("refused port: getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return nil, fmt.Errorf("refused port: bound to %T", sa)
	}
	return &RefusedPort{Addr: netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)), fd: fd}, nil
}

// Close releases the port.
func (r *RefusedPort) Close() error {
	if err := syscall.Close(r.fd); err != nil {
		return fmt.Errorf("refused port %s: %w", r.Addr, err)
	}
	return nil
}

// Refused holds a RefusedPort for the rest of tb and returns its address.
func Refused(tb testing.TB) netip.AddrPort {
	tb.Helper()
	r, err := ReserveRefused()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r.Addr
}

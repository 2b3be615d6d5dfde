package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// SilentTCP is a port that answers no connection, on one or more loopback
// addresses, as a host that drops packets does: a dial hangs until its
// deadline (tcp.timeout), where a port with nothing listening refuses at
// once. Each address has a listener whose accept queue is full, one
// connection that nobody accepts in a queue of zero, so the kernel drops
// every SYN that comes after it.
type SilentTCP struct {
	// Port is the port, the same on every address.
	Port uint16

	lns   []net.Listener
	fills []net.Conn
}

// StartSilentTCP starts a SilentTCP on addrs (127.0.0.2, 127.0.0.3, ...: any
// of 127.0.0.0/8 on Linux), on one free port.
func StartSilentTCP(addrs ...netip.Addr) (s *SilentTCP, err error) {
	s = &SilentTCP{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, s.Port).String())
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		s.lns = append(s.lns, ln)
		addr := ln.Addr().(*net.TCPAddr).AddrPort()
		s.Port = addr.Port()
		// listen(2) again on a listening socket sets its backlog.
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("backlog of %s: %w", addr, err)
		}
		var lerr error
		if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil || lerr != nil {
			return nil, fmt.Errorf("backlog of %s: %w", addr, errors.Join(err, lerr))
		}
		fill, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			return nil, fmt.Errorf("fill the accept queue of %s: %w", addr, err)
		}
		s.fills = append(s.fills, fill)
	}
	return s, nil
}

// Close closes the listeners and the connections that filled them.
func (s *SilentTCP) Close() error {
	var errs []error
	for _, c := range s.fills {
		errs = append(errs, c.Close())
	}
	for _, ln := range s.lns {
		errs = append(errs, ln.Close())
	}
	return errors.Join(errs...)
}

package tailscale

import (
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// bridge gives conn, a connection without a kernel socket (a userspace
// network stack's), a kernel socket that can travel to probe's process: one
// end of a new stream socketpair, whose other end relays bytes to and from
// conn until probe closes its end. Bytes then cost one more copy each way
// in this process, which is why the connect phase is marked proxied.
func bridge(conn net.Conn) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	near, err := fileConn(fds[0], "bridge")
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, err
	}
	far, err := fileConn(fds[1], "bridge-far")
	if err != nil {
		_ = near.Close()
		return nil, err
	}
	go relay(near.(*net.UnixConn), conn)
	return far, nil
}

// fileConn wraps the socket fd as a net.Conn; fd is closed either way.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("wrap socketpair end: %w", err)
	}
	return c, nil
}

// relay copies bytes between near and conn. The peer's end of stream reaches
// probe as a half close; probe's end of stream, which is probe closing its
// socket at the end of an attempt, closes both.
func relay(near *net.UnixConn, conn net.Conn) {
	go func() {
		_, _ = io.Copy(near, conn)
		_ = near.CloseWrite()
	}()
	_, _ = io.Copy(conn, near)
	_ = conn.Close()
	_ = near.Close()
}

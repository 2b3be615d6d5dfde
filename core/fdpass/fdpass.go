// Package fdpass passes connected sockets between processes over a
// SOCK_SEQPACKET unix socketpair, each socket tagged with a token so the
// receiver can match it to the RPC that announced it.
//
// Every socket travels as one message: an 8-byte big-endian token and an
// SCM_RIGHTS control message holding exactly one descriptor. The sender closes
// its copy once the message is sent; nothing ever calls (*os.File).Fd or
// shutdown on a socket that another process shares.
package fdpass

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Send and Receive on a closed channel or after the
// peer went away.
var ErrClosed = errors.New("fdpass: channel closed")

const (
	// tokenLen is the payload of a message: the token, big endian.
	tokenLen = 8
	// maxFDs is how many descriptors one read accepts before the kernel
	// truncates the control data; a valid message has one, more are closed.
	maxFDs = 4
	// defaultExpiry is how long a socket nobody has asked for is kept.
	defaultExpiry = 30 * time.Second
)

// Pair returns both ends of a new SOCK_SEQPACKET socketpair (close-on-exec
// set). One end stays in this process (wrap it with New), the other is given to
// a child as an extra file (exec.Cmd.ExtraFiles, which clears close-on-exec on
// the child's copy) and must be closed in the parent after the child starts.
func Pair() (local, remote *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "fdpass-local"), os.NewFile(uintptr(fds[1]), "fdpass-remote"), nil
}

var (
	tokenBase = rand.Uint64()
	tokenSeq  atomic.Uint64
)

// NewToken returns a token unique within this process. Tokens count up from a
// random base, so two processes collide only with negligible probability.
func NewToken() uint64 {
	return tokenBase + tokenSeq.Add(1)
}

// Channel sends and receives sockets over one end of a pair. It is safe for
// concurrent use.
type Channel struct {
	conn   *net.UnixConn
	expiry time.Duration // how long an unclaimed socket is kept

	mu      sync.Mutex
	closed  bool
	waiters map[uint64]chan int // Receives waiting; the loop sends the fd, Close closes the chan
	arrived map[uint64]*arrival // sockets received, not yet claimed

	closeOnce sync.Once
	closeErr  error
	closing   chan struct{} // closed when the channel closes
	loopDone  chan struct{} // closed when the receive loop has returned
}

// arrival is a socket received before anyone asked for it.
type arrival struct {
	fd    int
	timer *time.Timer
}

// New takes ownership of f (one end of a Pair, or fd 3 inherited by a plugin
// child: os.NewFile(3, "fdpass")) and starts the receive loop. f is closed
// whether or not New succeeds.
func New(f *os.File) (*Channel, error) {
	return newChannel(f, defaultExpiry)
}

func newChannel(f *os.File, expiry time.Duration) (*Channel, error) {
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fdpass: %w", err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok || uc.LocalAddr().Network() != "unixpacket" {
		fc.Close()
		return nil, fmt.Errorf("fdpass: %s: not a SOCK_SEQPACKET unix socket", f.Name())
	}
	c := &Channel{
		conn:     uc,
		expiry:   expiry,
		waiters:  make(map[uint64]chan int),
		arrived:  make(map[uint64]*arrival),
		closing:  make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go c.loop()
	return c, nil
}

// Send sends conn's socket tagged with token, then closes conn (the sender's
// copy; the connection stays up in the receiver). Send takes ownership of conn
// and closes it even when it fails. conn must be a syscall.Conn, such as a
// *net.TCPConn.
func (c *Channel) Send(token uint64, conn net.Conn) error {
	defer conn.Close()
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("fdpass: send %T: not a syscall.Conn", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("fdpass: send %T: %w", conn, err)
	}
	var msg [tokenLen]byte
	binary.BigEndian.PutUint64(msg[:], token)
	var sendErr error
	if err := raw.Control(func(fd uintptr) {
		_, _, sendErr = c.conn.WriteMsgUnix(msg[:], unix.UnixRights(int(fd)), nil)
	}); err != nil {
		return fmt.Errorf("fdpass: send %T: %w", conn, err)
	}
	switch {
	case sendErr == nil:
		return nil
	case errors.Is(sendErr, net.ErrClosed), errors.Is(sendErr, syscall.EPIPE), errors.Is(sendErr, syscall.ECONNRESET):
		return fmt.Errorf("%w: %w", ErrClosed, sendErr)
	default:
		return fmt.Errorf("fdpass: send token %#x: %w", token, sendErr)
	}
}

// Receive waits for the socket tagged token and returns it as a net.Conn. It
// returns early with ctx's error. A socket that arrives before anyone waits for
// it is kept until claimed, or closed after 30 s so an abandoned handoff cannot
// leak descriptors. A second Receive for the same token, or one for a token
// that never arrives, ends with ctx.
func (c *Channel) Receive(ctx context.Context, token uint64) (net.Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if a, ok := c.arrived[token]; ok {
		delete(c.arrived, token)
		c.mu.Unlock()
		a.timer.Stop()
		return fileConn(a.fd)
	}
	if _, ok := c.waiters[token]; ok {
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.closing:
			return nil, ErrClosed
		}
	}
	ch := make(chan int, 1)
	c.waiters[token] = ch
	c.mu.Unlock()

	select {
	case fd, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return fileConn(fd)
	case <-ctx.Done():
		c.mu.Lock()
		if c.waiters[token] == ch {
			delete(c.waiters, token)
			c.mu.Unlock()
			return nil, ctx.Err()
		}
		c.mu.Unlock()
		// The loop or Close got there first: the socket is in ch, or ch is closed.
		if fd, ok := <-ch; ok {
			return fileConn(fd)
		}
		return nil, ErrClosed
	}
}

// Done returns a channel that is closed when the channel closes: by Close,
// or because the peer went away (its process exited).
func (c *Channel) Done() <-chan struct{} { return c.closing }

// Close stops the receive loop, closes the channel and every socket received
// but not claimed; pending Receives return ErrClosed. Close is idempotent.
func (c *Channel) Close() error {
	c.shutdown()
	<-c.loopDone
	return c.closeErr
}

// shutdown closes the socket, fails the waiters and closes unclaimed sockets.
func (c *Channel) shutdown() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.closing)
		for token, ch := range c.waiters {
			close(ch)
			delete(c.waiters, token)
		}
		for token, a := range c.arrived {
			a.timer.Stop()
			unix.Close(a.fd)
			delete(c.arrived, token)
		}
		c.mu.Unlock()
		c.closeErr = c.conn.Close()
	})
}

// loop reads messages until the channel is closed or the peer goes away.
func (c *Channel) loop() {
	defer close(c.loopDone)
	buf := make([]byte, tokenLen+1) // one spare byte to see an oversized payload
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	for {
		n, oobn, flags, _, err := c.conn.ReadMsgUnix(buf, oob)
		fds := rights(oob[:oobn])
		// A zero-length message carrying descriptors reads as io.EOF.
		if err != nil && !(errors.Is(err, io.EOF) && oobn > 0) {
			closeAll(fds)
			c.shutdown()
			return
		}
		if n != tokenLen || len(fds) != 1 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			closeAll(fds) // malformed: drop it
			continue
		}
		c.deliver(binary.BigEndian.Uint64(buf), fds[0])
	}
}

// deliver hands fd to the Receive waiting for token, or keeps it until claimed
// or expired. A second socket with a token already waiting to be claimed is
// closed.
func (c *Channel) deliver(token uint64, fd int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiters[token]; ok {
		delete(c.waiters, token)
		ch <- fd
		return
	}
	if _, ok := c.arrived[token]; ok || c.closed {
		unix.Close(fd)
		return
	}
	a := &arrival{fd: fd}
	a.timer = time.AfterFunc(c.expiry, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.arrived[token] == a {
			delete(c.arrived, token)
			unix.Close(fd)
		}
	})
	c.arrived[token] = a
}

// rights returns the descriptors in the SCM_RIGHTS messages of oob.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// fileConn turns a received descriptor into a net.Conn and closes the
// descriptor (net.FileConn keeps its own duplicate).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "fdpass")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("fdpass: received descriptor: %w", err)
	}
	return conn, nil
}

package fdpass

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Environment of the child process run by TestHelperProcess.
const (
	envHelper = "FDPASS_TEST_HELPER" // "send", "echo" or "idle"
	envAddr   = "FDPASS_TEST_ADDR"
	envToken  = "FDPASS_TEST_TOKEN"
)

// channels returns both ends of a new pair wrapped as Channels, closed at the
// end of the test.
func channels(t testing.TB, expiry time.Duration) (a, b *Channel) {
	t.Helper()
	local, remote, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	if a, err = newChannel(local, expiry); err != nil {
		t.Fatal(err)
	}
	if b, err = newChannel(remote, expiry); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// listen returns a TCP listener on 127.0.0.1, closed at the end of the test.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept accepts one connection on ln, closed at the end of the test.
func accept(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tcpPair returns the client and server ends of a new TCP connection over ln.
// Only the server end is closed at the end of the test: the client is meant to
// be sent.
func tcpPair(t testing.TB, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return client, accept(t, ln)
}

// exchange checks that bytes flow both ways between a and b.
func exchange(t testing.TB, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"forward", a, b}, {"reverse", b, a}} {
		msg := []byte("hello " + dir.name)
		if _, err := dir.from.Write(msg); err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		got := make([]byte, len(msg))
		dir.to.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatalf("%s: read: %v", dir.name, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%s: read %q, want %q", dir.name, got, msg)
		}
	}
}

// fdCount returns the number of open descriptors of this process.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// eventually polls cond for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitEOF checks that the peer of c has been closed.
func waitEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read on the peer of a socket that should be closed: n=%d, err=%v, want EOF", n, err)
	}
}

// waiting reports how many Receives wait on c.
func waiting(c *Channel) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func TestRoundTrip(t *testing.T) {
	a, b := channels(t, defaultExpiry)
	ln := listen(t)
	client, server := tcpPair(t, ln)

	tok := NewToken()
	if err := a.Send(tok, client); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on the sender's copy after Send: %v, want net.ErrClosed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := b.Receive(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if _, ok := got.(*net.TCPConn); !ok {
		t.Errorf("received %T, want *net.TCPConn", got)
	}
	if got.RemoteAddr().String() != server.LocalAddr().String() || got.LocalAddr().String() != server.RemoteAddr().String() {
		t.Errorf("received %s -> %s, want %s -> %s", got.LocalAddr(), got.RemoteAddr(), server.RemoteAddr(), server.LocalAddr())
	}
	exchange(t, got, server)
}

// TestHelperProcess is the child of TestAcrossProcesses and TestPeerGone. Run
// normally, it does nothing.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return
	}
	if err := helper(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helper runs in the child, with its end of the pair as fd 3. It returns once
// its parent closes its stdin (send, idle) or the echoed connection (echo).
func helper(mode string) error {
	ch, err := New(os.NewFile(3, "fdpass"))
	if err != nil {
		return err
	}
	defer ch.Close()
	switch mode {
	case "send":
		tok, err := strconv.ParseUint(os.Getenv(envToken), 10, 64)
		if err != nil {
			return err
		}
		conn, err := net.Dial("tcp", os.Getenv(envAddr))
		if err != nil {
			return err
		}
		if err := ch.Send(tok, conn); err != nil {
			return err
		}
	case "echo":
		tok, err := strconv.ParseUint(os.Getenv(envToken), 10, 64)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := ch.Receive(ctx, tok)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = io.Copy(conn, conn)
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// child runs the test binary as a helper in mode with the remote end of a
// new pair as fd 3, and returns the channel on the local end and a function
// that kills the child. At the end of the test the child is told to exit by
// closing its stdin, and must exit cleanly unless it was killed.
func child(t *testing.T, mode string, env ...string) (ch *Channel, kill func()) {
	t.Helper()
	local, remote, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	// The race detector's default 1 s sleep at exit would slow every test down.
	env = append(env, envHelper+"="+mode, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{remote}
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	remote.Close()
	if ch, err = New(local); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil && !killed {
			t.Errorf("helper %s: %v\n%s", mode, err, stderr.Bytes())
		}
		ch.Close()
	})
	return ch, func() { killed = true; cmd.Process.Kill() }
}

func TestAcrossProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("child sends", func(t *testing.T) {
		ln := listen(t)
		tok := NewToken()
		ch, _ := child(t, "send", envAddr+"="+ln.Addr().String(), envToken+"="+strconv.FormatUint(tok, 10))
		server := accept(t, ln)
		got, err := ch.Receive(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Close()
		exchange(t, got, server)
	})

	t.Run("parent sends", func(t *testing.T) {
		ln := listen(t)
		tok := NewToken()
		ch, _ := child(t, "echo", envToken+"="+strconv.FormatUint(tok, 10))
		client, server := tcpPair(t, ln)
		defer client.Close()
		if err := ch.Send(tok, server); err != nil {
			t.Fatal(err)
		}
		msg := []byte("echo me")
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echoed %q, want %q", got, msg)
		}
	})
}

func TestTokenMatching(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		name         string
		receiveFirst bool
	}{
		{"send before receive", false},
		{"receive before send", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := channels(t, defaultExpiry)
			ln := listen(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			tokens := make([]uint64, n)
			for i := range tokens {
				tokens[i] = NewToken()
			}
			got := make([]net.Conn, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			receiveAll := func() {
				for i := n - 1; i >= 0; i-- { // out of order
					wg.Go(func() { got[i], errs[i] = b.Receive(ctx, tokens[i]) })
				}
			}
			if tc.receiveFirst {
				receiveAll()
				eventually(t, "receivers to wait", func() bool { return waiting(b) == n })
			}
			servers := make([]net.Conn, n)
			for i := range servers {
				var client net.Conn
				client, servers[i] = tcpPair(t, ln)
				if err := a.Send(tokens[i], client); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.receiveFirst {
				receiveAll()
			}
			wg.Wait()
			for i := range got {
				if errs[i] != nil {
					t.Fatalf("receive %d: %v", i, errs[i])
				}
				defer got[i].Close()
				if got[i].LocalAddr().String() != servers[i].RemoteAddr().String() {
					t.Errorf("token %d: received the socket from %s, want %s", i, got[i].LocalAddr(), servers[i].RemoteAddr())
				}
			}
			exchange(t, got[2], servers[2])
		})
	}
}

func TestReceiveEndsWithContext(t *testing.T) {
	const wait = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, a, b *Channel) uint64 // returns the token to wait for
	}{
		{"unknown token", func(t *testing.T, a, b *Channel) uint64 { return NewToken() }},
		{"second receive of a token", func(t *testing.T, a, b *Channel) uint64 {
			tok := NewToken()
			client, _ := tcpPair(t, listen(t))
			if err := a.Send(tok, client); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := b.Receive(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			got.Close()
			return tok
		}},
		{"concurrent receive of a token", func(t *testing.T, a, b *Channel) uint64 {
			tok := NewToken()
			ctx, cancel := context.WithTimeout(context.Background(), 5*wait)
			t.Cleanup(cancel)
			go b.Receive(ctx, tok)
			eventually(t, "the first receiver to wait", func() bool { return waiting(b) == 1 })
			return tok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := channels(t, defaultExpiry)
			tok := tc.setup(t, a, b)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			start := time.Now()
			conn, err := b.Receive(ctx, tok)
			elapsed := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Receive = %v, %v; want context.DeadlineExceeded", conn, err)
			}
			if elapsed < wait || elapsed > wait+100*time.Millisecond {
				t.Errorf("Receive returned after %v, want %v", elapsed, wait)
			}
		})
	}
}

func TestUnclaimedSocketExpires(t *testing.T) {
	const expiry = 100 * time.Millisecond
	a, b := channels(t, expiry)
	ln := listen(t)
	base := fdCount(t)

	client, server := tcpPair(t, ln)
	start := time.Now()
	if err := a.Send(NewToken(), client); err != nil {
		t.Fatal(err)
	}
	waitEOF(t, server) // the receiver's copy, the last one, was closed
	if elapsed := time.Since(start); elapsed < expiry || elapsed > expiry+200*time.Millisecond {
		t.Errorf("unclaimed socket closed after %v, want %v", elapsed, expiry)
	}
	server.Close()
	eventually(t, "fd count back to its baseline", func() bool { return fdCount(t) == base })
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.arrived) != 0 {
		t.Errorf("%d sockets still held", len(b.arrived))
	}
}

func TestPeerGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (ch *Channel, kill func())
	}{
		{"remote end closed", func(t *testing.T) (*Channel, func()) {
			local, remote, err := Pair()
			if err != nil {
				t.Fatal(err)
			}
			ch, err := New(local)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ch.Close() })
			return ch, func() { remote.Close() }
		}},
		{"child killed", func(t *testing.T) (*Channel, func()) {
			return child(t, "idle")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, kill := tc.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := ch.Receive(ctx, NewToken())
				errc <- err
			}()
			eventually(t, "the receiver to wait", func() bool { return waiting(ch) == 1 })
			kill()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("pending Receive = %v, want ErrClosed", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("pending Receive still waiting 2s after the peer went away")
			}
			select {
			case <-ch.Done():
			default:
				t.Error("Done is not closed after the peer went away")
			}
			client, _ := tcpPair(t, listen(t))
			if err := ch.Send(NewToken(), client); !errors.Is(err, ErrClosed) {
				t.Errorf("Send = %v, want ErrClosed", err)
			}
			if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Send left conn open: write = %v", err)
			}
		})
	}
}

// sendRaw writes one message on the socket f by hand: payload plus, if fds is
// not empty, one SCM_RIGHTS control message holding them.
func sendRaw(t *testing.T, f *os.File, payload []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// unix.Sendmsg would send a one-byte payload in place of an empty one.
	msg := unix.Msghdr{}
	if len(payload) > 0 {
		iov := unix.Iovec{Base: &payload[0]}
		iov.SetLen(len(payload))
		msg.Iov, msg.Iovlen = &iov, 1
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	var sendErr error
	if err := raw.Control(func(fd uintptr) {
		if _, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), 0); errno != 0 {
			sendErr = errno
		}
	}); err != nil {
		t.Fatal(err)
	}
	if sendErr != nil {
		t.Fatalf("sendmsg: %v", sendErr)
	}
}

func TestMalformedMessages(t *testing.T) {
	// pipes returns the read ends of n new pipes.
	pipes := func(t *testing.T, n int) []int {
		fds := make([]int, n)
		for i := range fds {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			unix.Close(p[1])
			fds[i] = p[0]
		}
		return fds
	}
	token := func(tok uint64) []byte { return binary.BigEndian.AppendUint64(nil, tok) }

	for _, tc := range []struct {
		name    string
		payload func(tok uint64) []byte
		fds     int
		wantErr bool // the message is delivered, but Receive fails
	}{
		{"no fd", token, 0, false},
		{"empty payload", func(uint64) []byte { return nil }, 1, false},
		{"short payload", func(tok uint64) []byte { return token(tok)[:3] }, 1, false},
		{"long payload", func(tok uint64) []byte { return append(token(tok), 0) }, 1, false},
		{"two fds", token, 2, false},
		{"more fds than read", token, maxFDs + 2, false},
		{"fd not a socket", token, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, remote, err := Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer remote.Close()
			ch, err := New(local)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			ln := listen(t)
			base := fdCount(t)

			bad := NewToken()
			fds := pipes(t, tc.fds)
			sendRaw(t, remote, tc.payload(bad), fds...)
			closeAll(fds)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			conn, err := ch.Receive(ctx, bad)
			if dropped := errors.Is(err, context.DeadlineExceeded); conn != nil || dropped == tc.wantErr {
				t.Fatalf("Receive of the bad message = %v, %v; want an error, dropped: %v", conn, err, !tc.wantErr)
			}

			// A good message still goes through.
			good := NewToken()
			client, server := tcpPair(t, ln)
			raw, err := client.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			raw.Control(func(fd uintptr) { sendRaw(t, remote, token(good), int(fd)) })
			client.Close()
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := ch.Receive(ctx, good)
			if err != nil {
				t.Fatal(err)
			}
			exchange(t, got, server)
			got.Close()
			server.Close()
			eventually(t, "fd count back to its baseline", func() bool { return fdCount(t) == base })
		})
	}
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	base := fdCount(t)
	func() {
		a, b := channels(t, defaultExpiry)
		ln := listen(t)
		client, server := tcpPair(t, ln)
		if err := a.Send(NewToken(), client); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the socket to arrive", func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.arrived) == 1
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := b.Receive(ctx, NewToken())
			errc <- err
		}()
		eventually(t, "the receiver to wait", func() bool { return waiting(b) == 1 })

		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Errorf("pending Receive = %v, want ErrClosed", err)
		}
		waitEOF(t, server) // the unclaimed socket was closed
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := b.Receive(ctx, NewToken()); !errors.Is(err, ErrClosed) {
			t.Errorf("Receive after Close = %v, want ErrClosed", err)
		}
		client, server2 := tcpPair(t, ln)
		if err := b.Send(NewToken(), client); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
		a.Close()
		ln.Close()
		server.Close()
		server2.Close()
	}()
	eventually(t, "goroutines back to their baseline", func() bool { return runtime.NumGoroutine() <= before })
	eventually(t, "fd count back to its baseline", func() bool { return fdCount(t) <= base })
}

func TestNewRejectsOtherSockets(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if _, err := New(os.NewFile(uintptr(fds[0]), "stream")); err == nil {
		t.Fatal("New accepted a SOCK_STREAM socket")
	}
}

func TestNewToken(t *testing.T) {
	seen := make(map[uint64]bool)
	for range 1000 {
		tok := NewToken()
		if seen[tok] {
			t.Fatalf("NewToken returned %#x twice", tok)
		}
		seen[tok] = true
	}
}

// BenchmarkHandoff measures one handoff: Send on one end, Receive (including
// net.FileConn) on the other. The same TCP connection travels back and forth.
func BenchmarkHandoff(b *testing.B) {
	ends := [2]*Channel{}
	ends[0], ends[1] = channels(b, defaultExpiry)
	conn, _ := tcpPair(b, listen(b))
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, to := ends[i%2], ends[(i+1)%2]
		i++
		tok := NewToken()
		if err := from.Send(tok, conn); err != nil {
			b.Fatal(err)
		}
		var err error
		if conn, err = to.Receive(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close()
}

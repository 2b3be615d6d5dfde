package tailscale

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestBridge bridges one end of a net.Pipe (a connection without a kernel
// socket) and checks both directions, the server's end of stream, and that
// closing the kernel socket closes the pipe.
func TestBridge(t *testing.T) {
	conn, server := net.Pipe()
	far, err := bridge(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	if _, ok := far.(syscall.Conn); !ok {
		t.Fatalf("bridge returned %T, want a kernel socket", far)
	}
	deadline := time.Now().Add(5 * time.Second)
	_ = far.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)

	if _, err := far.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v; want ping", buf, err)
	}
	if _, err := server.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	server.Close() // the server's end of stream reaches probe after its bytes
	got, err := io.ReadAll(far)
	if err != nil || string(got) != "pong" {
		t.Fatalf("probe read %q, %v; want pong then EOF", got, err)
	}

	conn2, server2 := net.Pipe()
	far2, err := bridge(conn2)
	if err != nil {
		t.Fatal(err)
	}
	_ = server2.SetDeadline(deadline)
	far2.Close() // probe ends the attempt
	if _, err := server2.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("server read after probe closed: %v, want EOF", err)
	}
}

package dialtcp

import (
	"context"
	"testing"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"golang.org/x/sys/unix"
)

// TestDialOutOfDescriptors lowers this process's descriptor limit to 0 for
// one dial: it finds no descriptor, and says so as local.fd_limit, not as a
// failure of the target.
func TestDialOutOfDescriptors(t *testing.T) {
	srv, err := lab.StartTCP("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	d, err := newDialer(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// No new descriptor may be opened; the open ones stay.
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 0, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv.Addr, Host: "127.0.0.1"})
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatalf("restore RLIMIT_NOFILE: %v", err)
	}
	if err != nil || resp.Conn != nil || resp.Failure == nil || resp.Failure.Class != sdk.ClassFDLimit {
		t.Fatalf("Dial = %+v, %v; want a local.fd_limit failure", resp, err)
	}
	if resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv.Addr, Host: "127.0.0.1"}); err != nil || resp.Conn == nil {
		t.Fatalf("Dial after the limit was restored = %+v, %v", resp, err)
	} else {
		resp.Conn.Close()
	}
}

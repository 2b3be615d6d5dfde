package dialtcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"

	"github.com/probe-dev/probe/core/sdk"
)

// accepted starts a loopback listener on addr and returns its address and
// a channel of the remote address of each connection it accepts.
func accepted(t *testing.T, addr string) (netip.AddrPort, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String()), peers
}

// freePorts returns n consecutive loopback ports below the ephemeral range
// that are free just now.
func freePorts(t *testing.T, n int) uint16 {
	t.Helper()
	for base := 20000 + os.Getpid()%5000; base < 32000; base += n {
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return uint16(base)
		}
	}
	t.Fatal("no free ports")
	return 0
}

func dialer(t *testing.T, values map[string]cty.Value) *Dialer {
	t.Helper()
	d, err := newDialer(t, values)
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Dialer)
}

// TestSource checks where a connection leaves from: the source address
// (127.0.0.2, a second loopback address) and a port of source_port, skipping
// ports in use, as the server sees them.
func TestSource(t *testing.T) {
	srv, peers := accepted(t, "127.0.0.1:0")
	base := freePorts(t, 3)
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", base))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name   string
		values map[string]cty.Value
		want   string // the server's view of the client
		class  sdk.Class
		msg    string
	}{
		{"address", map[string]cty.Value{"source": cty.StringVal("127.0.0.2")}, "127.0.0.2:", "", ""},
		{"port", map[string]cty.Value{"source_port": cty.StringVal(fmt.Sprint(base + 1))}, fmt.Sprintf("127.0.0.1:%d", base+1), "", ""},
		{"address and range, first in use", map[string]cty.Value{"source": cty.StringVal("127.0.0.2"), "source_port": cty.StringVal(fmt.Sprintf("%d-%d", base, base+2))},
			fmt.Sprintf("127.0.0.2:%d", base+1), "", ""},
		{"every port in use", map[string]cty.Value{"source": cty.StringVal("127.0.0.2"), "source_port": cty.StringVal(fmt.Sprint(base))},
			"", sdk.ClassTCPError, "every port in use"},
		{"wrong family", map[string]cty.Value{"source": cty.StringVal("::1"), "source_port": cty.StringVal(fmt.Sprint(base + 2))},
			"", sdk.ClassTCPError, "bind [::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dialer(t, tt.values)
			d.start = func() uint32 { return 0 } // from the range's first port
			resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv, Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			if tt.class != "" {
				if resp.Failure == nil || resp.Failure.Class != tt.class || !strings.Contains(resp.Failure.Message, tt.msg) {
					t.Fatalf("failure %+v, want %s saying %q", resp.Failure, tt.class, tt.msg)
				}
				return
			}
			if resp.Failure != nil {
				t.Fatal(resp.Failure)
			}
			defer resp.Conn.Close()
			peer := <-peers
			if !strings.HasPrefix(peer, tt.want) || resp.Phases[0].Attrs["local"] != peer {
				t.Errorf("the server saw %s, the phase says local %v; want %s", peer, resp.Phases[0].Attrs["local"], tt.want)
			}
		})
	}
}

// TestFwmark checks that the socket carries the mark.
func TestFwmark(t *testing.T) {
	srv, _ := accepted(t, "127.0.0.1:0")
	d := dialer(t, map[string]cty.Value{"fwmark": cty.NumberIntVal(0x2a)})
	resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv, Host: "127.0.0.1"})
	if err != nil || resp.Failure != nil {
		t.Fatalf("Dial: %v, %+v", err, resp.Failure)
	}
	defer resp.Conn.Close()
	raw, err := resp.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	if err := raw.Control(func(fd uintptr) { mark, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); err != nil || mark != 0x2a {
		t.Errorf("SO_MARK = %#x, %v; want 0x2a", mark, err)
	}
}

// netnsEnv marks the test binary run again in a network namespace of its
// own by TestFwmarkRouting.
const netnsEnv = "PROBE_DIALTCP_NETNS"

// TestFwmarkRouting checks that the mark steers the route: in a network
// namespace of its own (unshare), a policy rule sends packets marked 7 to
// a table where 127.0.0.1 is unreachable. A connect without the mark, or
// with another, reaches the server; one marked 7 is unreachable.
func TestFwmarkRouting(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		args := []string{"--net"}
		if os.Geteuid() != 0 {
			args = append(args, "--map-root-user")
		}
		cmd := exec.Command("unshare", append(args, os.Args[0], "-test.run=^TestFwmarkRouting$", "-test.v")...)
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a new network namespace (unshare, util-linux): %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestFwmarkRouting") {
			t.Fatalf("the run in the namespace did not pass:\n%s", out)
		}
		return
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"rule", "add", "pref", "10", "fwmark", "7", "table", "100"},
		{"rule", "add", "pref", "100", "table", "local"},
		{"rule", "del", "pref", "0"},
		{"route", "add", "unreachable", "127.0.0.1/32", "table", "100"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	srv, _ := accepted(t, "127.0.0.1:0")
	for _, tt := range []struct {
		mark  int64
		class sdk.Class
	}{{0, ""}, {8, ""}, {7, sdk.ClassTCPUnreachable}} {
		t.Run(fmt.Sprint("fwmark ", tt.mark), func(t *testing.T) {
			d := dialer(t, map[string]cty.Value{"fwmark": cty.NumberIntVal(tt.mark)})
			resp, err := d.Dial(context.Background(), &sdk.DialRequest{Address: srv, Host: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			var class sdk.Class
			if resp.Failure != nil {
				class = resp.Failure.Class
			} else {
				resp.Conn.Close()
			}
			if class != tt.class {
				t.Errorf("class %q, want %q (failure %+v)", class, tt.class, resp.Failure)
			}
		})
	}
}

func TestNewSource(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values map[string]cty.Value
		attr   string
	}{
		{"port 0", map[string]cty.Value{"source_port": cty.StringVal("0")}, "source_port"},
		{"port too big", map[string]cty.Value{"source_port": cty.StringVal("65536")}, "source_port"},
		{"backwards", map[string]cty.Value{"source_port": cty.StringVal("5-3")}, "source_port"},
		{"not a port", map[string]cty.Value{"source_port": cty.StringVal("http")}, "source_port"},
		{"open range", map[string]cty.Value{"source_port": cty.StringVal("4000-")}, "source_port"},
		{"negative mark", map[string]cty.Value{"fwmark": cty.NumberIntVal(-1)}, "fwmark"},
		{"mark too big", map[string]cty.Value{"fwmark": cty.NumberIntVal(1 << 32)}, "fwmark"},
		{"fractional mark", map[string]cty.Value{"fwmark": cty.NumberFloatVal(1.5)}, "fwmark"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newDialer(t, tt.values)
			var ae *sdk.AttrError
			if !errors.As(err, &ae) || ae.Attr != tt.attr {
				t.Fatalf("error %v, want an *sdk.AttrError for %q", err, tt.attr)
			}
		})
	}
}

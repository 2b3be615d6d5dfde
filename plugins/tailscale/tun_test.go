package tailscale

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/sys/unix"
	"tailscale.com/client/local"
	"tailscale.com/tailcfg"

	"github.com/probe-dev/probe/core/sdk"
)

// requireTUNEnv, set to "1" (as .ci/run does), makes TestDialThroughTUN
// fail rather than skip without a TUN device: netlab.RequireEnv of the main
// module, whose package this module does not import.
const requireTUNEnv = "PROBE_REQUIRE_NETLAB"

// TestDialThroughTUN runs a second tailscaled on a TUN device, as a machine
// on a tailnet runs it, inside the tests' network namespace, and dials a
// peer through it with the local backend: the dialer learns from the
// LocalAPI that the kernel routes the tailnet, dials plain TCP (a kernel
// socket from the tailnet address, not a bridged stream: no "proxied"), and
// the connection reaches the peer through tailscaled and the DERP relay. The
// tailscaled gets a resolv.conf of its own (the test binary runs in a mount
// namespace of its own) and manages neither DNS nor netfilter; it is stopped
// at the end, and its device and routes go with it.
func TestDialThroughTUN(t *testing.T) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		if os.Getenv(requireTUNEnv) == "1" {
			t.Fatalf("no TUN device (%v), and %s=1", err, requireTUNEnv)
		}
		t.Skipf("no TUN device: %v (set %s=1 to make this a failure)", err, requireTUNEnv)
	}
	privateResolvConf(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	node, stop, err := tn.startTailscaled(ctx, "tun", "probe-ts0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	n := tn.control.Node(node.PublicKey)
	online := true
	n.Online = &online
	tn.control.UpdateNode(n)
	if err := pingUntil(ctx, &local.Client{Socket: node.socket, UseSocketOnly: true}, tn.web, tailcfg.PingDisco); err != nil {
		t.Fatal(err)
	}

	trapped := tn.trapped.Load()
	d := newDialer(t, tn.config(sdk.KindDialer, backendLocal, map[string]cty.Value{"socket": cty.StringVal(node.socket)}))
	addr := netip.AddrPortFrom(tn.web, 80)
	resp := dial(t, d, addr)
	p := connected(t, resp)
	if p.Name != sdk.PhaseConnect || !p.OK || p.Duration <= 0 {
		t.Errorf("phase = %s ok=%v duration=%v, want an ok connect", p.Name, p.OK, p.Duration)
	}
	if p.Attrs["peer"] != "web" || p.Attrs["proxied"] == true {
		t.Errorf("attrs = %v, want peer web, not proxied", p.Attrs)
	}
	tc, ok := resp.Conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("conn %T, want a kernel TCP socket", resp.Conn)
	}
	if local := tc.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); local != node.TailscaleIPs[0] {
		t.Errorf("connection from %s, want the TUN node's tailnet address %s", local, node.TailscaleIPs[0])
	}
	if body := get(t, resp.Conn); body != "web" {
		t.Errorf("body %q through the connection, want %q", body, "web")
	}
	if got := tn.trapped.Load(); got != trapped {
		t.Errorf("%d connections reached the trap listener outside the tailnet", got-trapped)
	}
}

// privateResolvConf bind-mounts an empty file over /etc/resolv.conf until
// the test ends, in this process's own mount namespace.
func privateResolvConf(t *testing.T) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(f, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount a resolv.conf of the test's own: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount("/etc/resolv.conf", unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the test's resolv.conf: %v", err)
		}
	})
}

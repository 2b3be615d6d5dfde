package sdk_test

import (
	"context"
	"maps"
	"math"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/sdk"
)

// TestDialTCP checks what a dialer built on DialTCP reports: the connect
// placed from the moment the component was called, its addresses and the
// kernel's RTT; a refused connect as tcp.refused. dial-tcp's tests check
// the rest of the classes through the plugin.
func TestDialTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	callAt := time.Now()
	time.Sleep(5 * time.Millisecond)
	resp := sdk.DialTCP(context.Background(), callAt, addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if resp.Failure != nil || resp.Conn == nil {
		t.Fatalf("failure %v, conn %v; want a connection", resp.Failure, resp.Conn)
	}
	defer resp.Conn.Close()
	p := resp.Phases[0]
	if len(resp.Phases) != 1 || p.Name != sdk.PhaseConnect || !p.OK || p.Start < 5*time.Millisecond || p.Duration <= 0 {
		t.Errorf("phases %+v, want one connect phase that succeeded, starting 5 ms or more after the call", resp.Phases)
	}
	want := []string{"clock", "kernel_rtt_ms", "kernel_rttvar_ms", "local", "remote"}
	if got := slices.Sorted(maps.Keys(p.Attrs)); !cmp.Equal(got, want) {
		t.Errorf("attrs %v, want %v", got, want)
	}
	if p.Attrs["clock"] != sdk.ClockProcess {
		t.Errorf("clock %v, want %s", p.Attrs["clock"], sdk.ClockProcess)
	}
	// A probe's connection lasts an attempt: no keep-alive, unless the
	// dialer asks for it.
	if on := keepAlive(t, resp.Conn); on {
		t.Error("SO_KEEPALIVE is on; want it off on a probe's connection")
	}
	asked := sdk.DialTCPWith(context.Background(), time.Now(), addr, &net.Dialer{KeepAlive: time.Minute})
	if asked.Failure != nil {
		t.Fatalf("failure %v; want a connection", asked.Failure)
	}
	if on := keepAlive(t, asked.Conn); !on {
		t.Error("SO_KEEPALIVE is off with a dialer's KeepAlive of a minute; want it on")
	}
	asked.Conn.Close()
	// With the kernel's clock, its first round-trip sample is the phase's
	// duration.
	var nd net.Dialer
	kresp := sdk.DialTCPClock(context.Background(), time.Now(), addr, &nd, sdk.ClockKernel)
	if kresp.Failure != nil {
		t.Fatalf("failure %v; want a connection", kresp.Failure)
	}
	kresp.Conn.Close()
	kp := kresp.Phases[0]
	if rtt := kp.Attrs["kernel_rtt_ms"].(float64); kp.Attrs["clock"] != sdk.ClockKernel || math.Abs(sdk.Milliseconds(kp.Duration)-rtt) > 0.0005 {
		t.Errorf("clock %v, duration %v, kernel_rtt_ms %v; want the kernel's clock and its round trip", kp.Attrs["clock"], kp.Duration, rtt)
	}
	if p.Attrs["remote"] != addr.String() || p.Attrs["local"] != resp.Conn.LocalAddr().String() {
		t.Errorf("remote %v, local %v; want %s and the connection's", p.Attrs["remote"], p.Attrs["local"], addr)
	}

	_ = ln.Close() // nothing listens there now
	resp = sdk.DialTCP(context.Background(), time.Time{}, addr, nil)
	if resp.Conn != nil || resp.Failure == nil || resp.Failure.Class != sdk.ClassTCPRefused || resp.Phases[0].OK {
		t.Errorf("to a closed port: %+v, want a failed connect phase and tcp.refused", resp)
	}
}

// keepAlive reports whether conn's socket has SO_KEEPALIVE on.
func keepAlive(t *testing.T, conn net.Conn) bool {
	t.Helper()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v != 0
}

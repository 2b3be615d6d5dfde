//go:build linux

// Package netlab is the lab's delay link (DESIGN §8): real round-trip time
// on a machine whose kernel has no netem. Two network namespaces, near and
// far, are joined by a pair of TUN devices and a user-space forwarder that
// holds every packet for a set one-way delay, so a TCP connect across the
// link takes one round trip (2·Delay plus the link's own tens of
// microseconds), a DNS query one, a TLS 1.3 handshake one more: ground truth
// to check probe's timings against.
//
// A Star shares one far namespace among several near ones, each joined to it
// by a link of its own delay: vantage points at different distances from
// the same servers, whose links can be cut one at a time.
//
// The namespaces hold only the link and their loopback: nothing can route
// out of them. Lab servers listen on the far side (StartLab, or
// StartFarLab in a process started there); probe, the reference loops and
// the tools compared with it run on the near side, by Namespace.Do,
// Namespace.Start or Namespace.StartRealTime. A link needs root and
// /dev/net/tun (Available); the namespaces have no name and vanish with the
// process, so a killed run leaves nothing behind.
package netlab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
	"golang.org/x/sys/unix"
)

// The addresses of the two ends, on a /30 of their own inside the link's
// namespaces.
var (
	NearAddr = netip.MustParseAddr("10.203.0.1")
	FarAddr  = netip.MustParseAddr("10.203.0.2")
)

// prefixBits is the length of the link's prefix.
const prefixBits = 30

// RequireEnv names the environment variable that, set to "1", makes tests
// fail rather than skip where the link cannot be built. CI sets it.
const RequireEnv = "PROBE_REQUIRE_NETLAB"

// Require ends tb where the link cannot be built: as a failure when
// RequireEnv is "1" (CI, where a missing link is a broken machine), else as
// a skip that says how to make it one (a developer's machine without root
// or /dev/net/tun).
func Require(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%v, and %s=1", err, RequireEnv)
		}
		tb.Skipf("%v (set %s=1 to make this a failure)", err, RequireEnv)
	}
}

// Link is the delay link: a Near and a Far namespace whose packets to each
// other are held Delay in each direction.
type Link struct {
	Near, Far *Namespace
	// Delay is the one-way delay.
	Delay time.Duration

	tuns [2]int // TUN file descriptors, near and far; -1 when not open
	fwd  []*forwarder
	late recorder
}

// Start builds a link with the one-way delay given. On failure it releases
// what it had built.
func Start(delay time.Duration) (l *Link, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	l = &Link{Delay: delay, tuns: [2]int{-1, -1}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start delay link: %w", err), l.Close())
			l = nil
		}
	}()
	if l.Near, err = newNamespace(); err != nil {
		return l, err
	}
	if l.Far, err = newNamespace(); err != nil {
		return l, err
	}
	for i, end := range []struct {
		ns   *Namespace
		addr netip.Addr
	}{{l.Near, NearAddr}, {l.Far, FarAddr}} {
		err := end.ns.Do(func() (err error) {
			l.tuns[i], err = openTUN("delay0", netip.PrefixFrom(end.addr, prefixBits))
			return err
		})
		if err != nil {
			return l, err
		}
	}
	for _, dir := range [][2]int{{l.tuns[0], l.tuns[1]}, {l.tuns[1], l.tuns[0]}} {
		f, err := startForwarder(dir[0], dir[1], delay, &l.late)
		if err != nil {
			return l, err
		}
		l.fwd = append(l.fwd, f)
	}
	return l, nil
}

// Close stops the forwarder and releases the devices and namespaces. It
// works after a failed Start.
func (l *Link) Close() error {
	var errs []error
	for _, f := range l.fwd {
		errs = append(errs, f.close())
	}
	for _, fd := range l.tuns {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	for _, ns := range []*Namespace{l.Near, l.Far} {
		if ns != nil {
			errs = append(errs, ns.close())
		}
	}
	return errors.Join(errs...)
}

// Lateness says how late the forwarder delivered the packets that crossed
// since the link started or ResetLateness was called. A run whose lateness
// is high was disturbed (the machine was busy): repeat it.
func (l *Link) Lateness() Lateness { return l.late.summary() }

// ResetLateness forgets the packets counted so far.
func (l *Link) ResetLateness() { l.late.reset() }

// Host is the name the far lab's DNS server answers with FarAddr.
const Host = "api.probe.test"

// FarLab is the lab on the far side of a link: a DNS server for probe.test
// on FarAddr port 53 answering Host with FarAddr, and a TLS server (serving
// HTTP after the handshake) on FarAddr port 443 whose certificate, for Host,
// *.probe.test and FarAddr, is issued by CA.
type FarLab struct {
	CA *lab.CA
	// CAFile is the path of CA's certificate in PEM.
	CAFile string
	DNS    *lab.DNSServer
	TLS    *lab.TLSServer

	dir string
}

// StartLab starts the far lab's servers inside l.Far.
func (l *Link) StartLab() (*FarLab, error) {
	var f *FarLab
	err := l.Far.Do(func() (err error) {
		f, err = StartFarLab()
		return err
	})
	return f, err
}

// StartFarLab starts the far lab's servers in the calling thread's network
// namespace: from a process started in a link's Far namespace, which then
// serves the lab out of the process that runs the link. On failure it
// releases what it had started.
func StartFarLab() (f *FarLab, err error) {
	f = &FarLab{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start far lab: %w", err), f.Close())
			f = nil
		}
	}()
	if f.dir, err = os.MkdirTemp("", "probe-netlab-"); err != nil {
		return f, err
	}
	if f.CA, err = lab.NewCA("probe netlab CA"); err != nil {
		return f, err
	}
	f.CAFile = filepath.Join(f.dir, "ca.pem")
	if err = f.CA.WritePEM(f.CAFile); err != nil {
		return f, err
	}
	now := time.Now()
	cert, err := f.CA.Issue([]string{Host, "*.probe.test"}, []net.IP{FarAddr.AsSlice()}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return f, err
	}
	if f.DNS, err = lab.StartDNSOn(netip.AddrPortFrom(FarAddr, 53), "probe.test."); err != nil {
		return f, err
	}
	f.DNS.AddAddr("api", FarAddr)
	f.TLS, err = lab.StartTLS(lab.TLSOptions{Cert: cert, Addr: netip.AddrPortFrom(FarAddr, 443)})
	return f, err
}

// Close stops the servers and removes the CA file. It works after a failed
// StartLab.
func (f *FarLab) Close() error {
	var errs []error
	if f.TLS != nil {
		errs = append(errs, f.TLS.Close())
	}
	if f.DNS != nil {
		errs = append(errs, f.DNS.Close())
	}
	if f.dir != "" {
		errs = append(errs, os.RemoveAll(f.dir))
	}
	return errors.Join(errs...)
}

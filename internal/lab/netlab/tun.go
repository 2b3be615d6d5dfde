//go:build linux

package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// txQueueLen is the TUN devices' transmit queue length: the default 500
// drops packets in bursts.
const txQueueLen = 10000

// openTUN creates the TUN device name (IFF_TUN|IFF_NO_PI) in the calling
// thread's network namespace, turns IPv6 off there, gives the device addr
// and brings it up. It returns the device's file descriptor, non-blocking.
func openTUN(name string, addr netip.Prefix) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err == nil {
		err = disableIPv6()
	}
	if err == nil {
		err = setUp(name, &addr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set up TUN %s: %w", name, err)
	}
	return fd, nil
}

// disableIPv6 turns IPv6 off in the calling thread's network namespace, so
// that no stray packet (router solicitations, DAD) crosses the link. A
// kernel without IPv6 has nothing to turn off.
func disableIPv6() error {
	for _, conf := range []string{"all", "default"} {
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6: %w", err)
		}
	}
	return nil
}

// setUp brings the interface name up in the calling thread's network
// namespace, first giving it addr and the TUN transmit queue length when
// addr is not nil.
func setUp(name string, addr *netip.Prefix) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	ioctl := func(what string, req uint) error {
		if err := unix.IoctlIfreq(s, req, ifr); err != nil {
			return fmt.Errorf("%s of %s: %w", what, name, err)
		}
		return nil
	}
	if addr != nil {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-addr.Bits()))
		if err := ifr.SetInet4Addr(addr.Addr().AsSlice()); err != nil {
			return fmt.Errorf("address of %s: %w", name, err)
		}
		if err := ioctl("set address", unix.SIOCSIFADDR); err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(mask); err != nil {
			return fmt.Errorf("netmask of %s: %w", name, err)
		}
		if err := ioctl("set netmask", unix.SIOCSIFNETMASK); err != nil {
			return err
		}
		ifr.SetUint32(txQueueLen)
		if err := ioctl("set txqueuelen", unix.SIOCSIFTXQLEN); err != nil {
			return err
		}
	}
	if err := ioctl("get flags", unix.SIOCGIFFLAGS); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return ioctl("set flags", unix.SIOCSIFFLAGS)
}

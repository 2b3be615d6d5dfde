package sdk

import (
	"net"

	"golang.org/x/sys/unix"
)

// addKernelRTT adds the kernel's smoothed RTT and its variance, read from
// TCP_INFO, to attrs as kernel_rtt_ms and kernel_rttvar_ms. It adds nothing
// when the kernel does not answer. The descriptor is borrowed through
// SyscallConn, never with (*os.File).Fd, which would make it blocking.
func addKernelRTT(c *net.TCPConn, attrs map[string]any) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var info *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil {
		return
	}
	attrs["kernel_rtt_ms"] = float64(info.Rtt) / 1e3 // the kernel reports microseconds
	attrs["kernel_rttvar_ms"] = float64(info.Rttvar) / 1e3
}

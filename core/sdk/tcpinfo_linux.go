package sdk

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// addKernelRTT adds the kernel's smoothed RTT and its variance, read from
// TCP_INFO, to attrs as kernel_rtt_ms and kernel_rttvar_ms. It adds nothing
// when the kernel does not answer. The descriptor is borrowed through
// SyscallConn, never with (*os.File).Fd, which would make it blocking.
//
// It returns the round trip of the connect as the kernel timed it, from the
// SYN's transmission to the SYN-ACK's arrival, and true, when the smoothed
// RTT is that one sample: right after a connect whose SYN was never
// retransmitted (Karn's rule: a retransmitted SYN gives no sample), the
// kernel's first sample sets tcpi_rtt, in microseconds.
func addKernelRTT(c *net.TCPConn, attrs map[string]any) (time.Duration, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil {
		return 0, false
	}
	attrs["kernel_rtt_ms"] = float64(info.Rtt) / 1e3 // the kernel reports microseconds
	attrs["kernel_rttvar_ms"] = float64(info.Rttvar) / 1e3
	return time.Duration(info.Rtt) * time.Microsecond, info.Rtt > 0 && info.Total_retrans == 0
}

package sdk

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// The clocks a phase's duration can come from, its attribute "clock".
const (
	// ClockProcess is the monotonic clock of the process, read around the
	// work.
	ClockProcess = "process"
	// ClockKernel is the kernel's timing of the packets: for a TCP connect,
	// TCP_INFO's first round-trip sample, the SYN sent to the SYN-ACK
	// received.
	ClockKernel = "kernel"
)

// DialTCP connects to addr over TCP, from local (nil lets the kernel
// choose), and measures the connect alone as the phase PhaseConnect, its
// Start relative to callAt as StartSpan's. The phase's attrs are "local"
// and "remote", the connection's addresses, and on Linux "kernel_rtt_ms"
// and "kernel_rttvar_ms", the kernel's smoothed round-trip time and its
// variance read from TCP_INFO after the connect, and "clock", ClockProcess:
// its duration is the process's clock around the connect (DialTCPClock
// can take the kernel's). The connection has no TCP keep-alive unless
// the dialer of DialTCPWith asks for it. A connect that fails is
// the response's Failure, classified (tcp.refused, tcp.unreachable,
// tcp.reset, tcp.timeout, local.fd_limit, canceled, tcp.error); the
// response is never nil. It is dial-tcp's dial, for any dialer that
// connects a kernel socket.
func DialTCP(ctx context.Context, callAt time.Time, addr netip.AddrPort, local *net.TCPAddr) *DialResponse {
	var nd net.Dialer
	if local != nil { // a typed nil in LocalAddr would print as "<nil>->" in errors
		nd.LocalAddr = local
	}
	return DialTCPWith(ctx, callAt, addr, &nd)
}

// DialTCPWith is DialTCP through nd, a dialer the caller set up: its
// LocalAddr, and its Control for socket options (SO_MARK) or a bind of
// its own (a source port from a range). An error of Control fails the
// connect as any other.
func DialTCPWith(ctx context.Context, callAt time.Time, addr netip.AddrPort, nd *net.Dialer) *DialResponse {
	return DialTCPClock(ctx, callAt, addr, nd, ClockProcess)
}

// DialTCPClock is DialTCPWith with the clock of the connect phase's
// duration: ClockProcess, or ClockKernel for the kernel's round trip of the
// handshake (TCP_INFO's first sample: the SYN sent to the SYN-ACK
// received) where it has one, the process's clock where not (a
// retransmitted SYN, which gives no sample; a system other than Linux).
// The attribute "clock" says which the phase has.
func DialTCPClock(ctx context.Context, callAt time.Time, addr netip.AddrPort, nd *net.Dialer, clock string) *DialResponse {
	if nd.KeepAlive == 0 {
		// A probe's connection lasts an attempt, so Go's default TCP
		// keep-alive (four setsockopt calls a connect) would never send a
		// probe. A connection kept longer turns it on (core/preconnect).
		with := *nd
		with.KeepAlive = -1
		nd = &with
	}
	span := StartSpan(PhaseConnect, callAt)
	conn, err := nd.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		phase := span.End(false, nil)
		return &DialResponse{
			Phases:  []Phase{phase},
			Failure: &Failure{Phase: PhaseConnect, Class: tcpClass(ctx, err), Message: err.Error()},
		}
	}
	attrs := map[string]any{}
	phase := span.End(true, attrs)
	attrs["local"] = conn.LocalAddr().String()
	attrs["remote"] = conn.RemoteAddr().String()
	// The kernel timed the handshake where it happened; the process's
	// clock adds the system calls and whatever kept it from running once
	// the SYN-ACK came (a busy machine's wait for a processor), which goes
	// to the attempt's overhead instead.
	attrs["clock"] = ClockProcess
	if rtt, ok := addKernelRTT(conn.(*net.TCPConn), attrs); ok && clock == ClockKernel && rtt <= phase.Duration {
		phase.Duration = rtt
		attrs["clock"] = ClockKernel
	}
	return &DialResponse{Conn: conn, Phases: []Phase{phase}}
}

// tcpClass returns the failure class of a connect error. The socket's own
// verdict comes first, so that a refusal racing the deadline stays a
// refusal.
func tcpClass(ctx context.Context, err error) Class {
	var ne net.Error
	switch {
	case FDLimit(err): // the prober's own limit, not the target's doing
		return ClassFDLimit
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassTCPRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EHOSTDOWN):
		return ClassTCPUnreachable
	case errors.Is(err, syscall.ECONNRESET):
		return ClassTCPReset
	case errors.Is(err, syscall.ETIMEDOUT):
		return ClassTCPTimeout
	}
	if c := ContextClass(ctx, ClassTCPTimeout); c != "" {
		return c
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTCPTimeout
	}
	return ClassTCPError
}

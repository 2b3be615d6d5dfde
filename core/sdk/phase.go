package sdk

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Standard phase names. Handshakes name their phase after their protocol.
const (
	PhaseResolve = "resolve"
	PhaseConnect = "connect"
	PhaseTLS     = "tls"
	// PhaseProxy is a proxy dialer's second phase: the tunnel through the
	// proxy to the target (DialProxy).
	PhaseProxy = "proxy"
)

// Phase is one measured step of an attempt.
type Phase struct {
	// Name is the phase's name: PhaseResolve, PhaseConnect, or a handshake's
	// protocol.
	Name string
	// Start is the offset at which the phase began. A component reports it
	// relative to the moment it was called; the engine rebases it onto the
	// attempt's start.
	Start time.Duration
	// Duration is how long the phase ran, measured on the monotonic clock of
	// the process that did the work. A failed phase still reports it.
	Duration time.Duration
	// OK is false when the phase failed.
	OK bool
	// Attrs are small facts the phase learned. Values must be JSON-friendly:
	// string, bool, int, int64, float64, []string, and for nested facts
	// map[string]any and []any of these (dns-miekg's tries).
	Attrs map[string]any
}

// Span measures one phase. Start it with StartSpan when the work begins and
// call End when it ends; it reads the monotonic clock only.
type Span struct {
	name    string
	callAt  time.Time
	startAt time.Time
}

// StartSpan begins measuring the phase name. callAt is the moment the
// component was called, so that the phase's Start is reported relative to it;
// pass the zero time when the phase starts at the call.
func StartSpan(name string, callAt time.Time) Span {
	now := time.Now()
	if callAt.IsZero() {
		callAt = now
	}
	return Span{name: name, callAt: callAt, startAt: now}
}

// End finishes the span and returns the Phase with the given outcome.
func (s Span) End(ok bool, attrs map[string]any) Phase {
	end := time.Now()
	if attrs == nil {
		attrs = map[string]any{}
	}
	return Phase{
		Name:     s.name,
		Start:    s.startAt.Sub(s.callAt),
		Duration: end.Sub(s.startAt),
		OK:       ok,
		Attrs:    attrs,
	}
}

// Milliseconds returns d in milliseconds, the unit of the attributes that
// carry a duration (named "..._ms") and of probe's outputs. Round d first
// for fewer digits: Milliseconds(d.Round(time.Microsecond)).
func Milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// Class is a failure class: a stable, documented identifier of what went
// wrong, "<area>.<what>".
type Class string

// The failure classes. Plugins may define their own, named after themselves
// ("tailscale.not_a_peer"); these are the ones the built-ins use.
const (
	ClassDNSNXDomain  Class = "dns.nxdomain"  // the name does not exist
	ClassDNSServFail  Class = "dns.servfail"  // the server failed to answer
	ClassDNSRefused   Class = "dns.refused"   // the server refused the query
	ClassDNSNoAnswer  Class = "dns.no_answer" // the name exists but has no address
	ClassDNSTimeout   Class = "dns.timeout"   // no answer in time
	ClassDNSTruncated Class = "dns.truncated" // the answer was truncated
	ClassDNSMalformed Class = "dns.malformed" // the answer could not be parsed
	ClassDNSError     Class = "dns.error"     // any other resolver error

	ClassTCPRefused     Class = "tcp.refused"     // connection refused (RST to SYN)
	ClassTCPTimeout     Class = "tcp.timeout"     // no answer to SYN in time
	ClassTCPUnreachable Class = "tcp.unreachable" // no route to the host or network
	ClassTCPReset       Class = "tcp.reset"       // the peer reset an established connection
	ClassTCPError       Class = "tcp.error"       // any other socket error

	ClassTLSTimeout          Class = "tls.timeout"            // the handshake did not finish in time
	ClassTLSAlert            Class = "tls.alert"              // the server sent a fatal alert
	ClassTLSCertExpired      Class = "tls.cert_expired"       // the certificate is expired or not yet valid
	ClassTLSCertUntrusted    Class = "tls.cert_untrusted"     // the chain does not lead to a trusted root
	ClassTLSCertNameMismatch Class = "tls.cert_name_mismatch" // the certificate is not for the server name
	ClassTLSCertInvalid      Class = "tls.cert_invalid"       // the certificate is unusable for another reason
	ClassTLSProtocol         Class = "tls.protocol"           // the peer broke the protocol (EOF, garbage)

	ClassPluginCrashed Class = "plugin.crashed" // the plugin process died or hung
	ClassPluginError   Class = "plugin.error"   // the plugin returned an error instead of a result
	ClassCanceled      Class = "canceled"       // the run was canceled (Ctrl-C) during the phase

	// ClassFDLimit says that the process doing the work ran out of file
	// descriptors (EMFILE, ENFILE): nothing is known of the target. The
	// engine runs such an attempt again once descriptors are free; see
	// FDLimit.
	ClassFDLimit Class = "local.fd_limit"
)

// FDLimit reports whether err is the process's or the system's file
// descriptor limit (EMFILE, ENFILE). A component that opens sockets reports
// such an error as ClassFDLimit, not as a failure of the target.
func FDLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// Failure says why an attempt failed: in which phase, of what class, and a
// human-readable message.
type Failure struct {
	Phase   string
	Class   Class
	Message string
}

// Error makes a Failure usable where an error is expected (logs).
func (f *Failure) Error() string {
	return f.Phase + ": " + string(f.Class) + ": " + f.Message
}

// ContextClass returns ClassCanceled when ctx was canceled, timeout when its
// deadline passed, and "" while it is live. Components use it to classify an
// error that the context caused.
func ContextClass(ctx context.Context, timeout Class) Class {
	err := ctx.Err()
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return timeout
	default:
		return ClassCanceled
	}
}

package starttls

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// maxRead is the most a server may send before its go-ahead: the greeting,
// SMTP's EHLO reply, IMAP's untagged responses. A server that sends more
// is not one of these protocols (or is hostile): starttls.protocol.
const maxRead = 64 << 10

// protocols are the protocols the handshake speaks, by name.
var protocols = map[string]dialogue{
	"smtp":     smtp,
	"imap":     imap,
	"pop3":     pop3,
	"postgres": postgres,
}

// Handshaker speaks a protocol up to its upgrade to TLS.
type Handshaker struct {
	protocol string
	dialogue dialogue
	ehlo     string        // SMTP's EHLO name; "" for the local address's literal
	timeout  time.Duration // cap on the exchange, 0 for none
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{protocol: sdk.String(cfg, "protocol"), ehlo: sdk.String(cfg, "ehlo_name")}
	var ok bool
	if h.dialogue, ok = protocols[h.protocol]; !ok {
		return nil, sdk.AttrErrorf("protocol", "Unknown protocol",
			"protocol must be \"smtp\", \"imap\", \"pop3\" or \"postgres\", got %q.", h.protocol)
	}
	if h.ehlo != "" && h.protocol != "smtp" {
		return nil, sdk.AttrErrorf("ehlo_name", "EHLO name without SMTP", "ehlo_name is for protocol \"smtp\" only.")
	}
	if strings.ContainsFunc(h.ehlo, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, sdk.AttrErrorf("ehlo_name", "Invalid EHLO name",
			"ehlo_name must be a domain name or an address literal without spaces or control characters, got %q.", h.ehlo)
	}
	var err error
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return h, nil
}

// Handshake speaks the protocol over req.Conn up to the server's go-ahead
// for TLS: the phase "starttls" runs from the call (the server's greeting
// is awaited within it) to the go-ahead's last byte. A server that does not
// offer the upgrade, refuses it, does not speak the protocol, or sends a
// byte after its go-ahead (which would be taken for TLS: a STARTTLS command
// injection) is a Failure with a nil error. On success the connection is
// left as it is, for the tls handshake that follows.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	if d, ok := ctx.Deadline(); ok {
		_ = req.Conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = req.Conn.SetDeadline(time.Now()) })
	defer func() {
		stop()
		_ = req.Conn.SetDeadline(time.Time{})
	}()

	ehlo := h.ehlo
	if ehlo == "" {
		ehlo = addressLiteral(req.Conn.LocalAddr())
	}
	span := sdk.StartSpan(Phase, callAt)
	start := time.Now()
	r := bufio.NewReader(io.LimitReader(req.Conn, maxRead))
	ex := h.dialogue(&session{r: r, w: req.Conn, ehlo: ehlo})
	if ex.err == nil && r.Buffered() > 0 {
		ex.err = fmt.Errorf("the server sent %d bytes after its go-ahead, before TLS began", r.Buffered())
		ex.class = ClassProtocol
	}
	phase := span.End(ex.err == nil, map[string]any{"protocol": h.protocol})
	if ex.greeting != "" {
		phase.Attrs["greeting"] = ex.greeting
		phase.Attrs["greeting_ms"] = sdk.Milliseconds(ex.greetingAt.Sub(start).Round(time.Microsecond))
	}
	if ex.reply != "" {
		phase.Attrs["reply"] = ex.reply
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}}
	if ex.err != nil {
		class := ex.class
		if class == "" {
			class = classify(ctx, ex.err)
		}
		resp.Failure = &sdk.Failure{Phase: Phase, Class: class,
			Message: fmt.Sprintf("starttls %s with %s: %v", h.protocol, req.Address, ex.err)}
	}
	return resp, nil
}

// addressLiteral returns the SMTP address literal of addr's IP (RFC 5321
// §4.1.3): "[192.0.2.10]", "[IPv6:2001:db8::10]".
func addressLiteral(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "[127.0.0.1]"
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}

// classify returns the failure class of an exchange that broke off: the
// connection's error, or a server that closed it.
func classify(ctx context.Context, err error) sdk.Class {
	if errors.Is(err, syscall.ECONNRESET) {
		return sdk.ClassTCPReset
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassProtocol
}

// sanitize returns a line the server sent, for an attribute or a message:
// at most 200 bytes, its bytes outside printable ASCII escaped, so that a
// hostile server's line cannot carry terminal escapes.
func sanitize(s string) string {
	const most = 200
	cut := len(s) > most
	if cut {
		s = s[:most]
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		q := fmt.Sprintf("%+q", s)
		s = q[1 : len(q)-1]
	}
	if cut {
		s += "..."
	}
	return s
}

// hasCapability reports whether the capability name is among caps,
// compared without case.
func hasCapability(caps []string, name string) bool {
	return slices.ContainsFunc(caps, func(c string) bool { return strings.EqualFold(c, name) })
}

var _ sdk.Handshaker = (*Handshaker)(nil)

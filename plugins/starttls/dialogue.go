package starttls

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// session is what a dialogue speaks over: the connection's reader (bounded
// to maxRead bytes) and writer, and the EHLO name for SMTP.
type session struct {
	r    *bufio.Reader
	w    io.Writer
	ehlo string
}

// exchange is what a dialogue learned.
type exchange struct {
	greeting   string    // the server's first line, sanitized; "" when none
	greetingAt time.Time // when it had arrived
	reply      string    // the server's answer to the upgrade, sanitized
	err        error     // nil when the server gave the go-ahead
	// class is the failure class when the server answered and the answer
	// decides it; "" lets the connection's error decide (classify).
	class sdk.Class
}

// dialogue speaks one protocol up to the go-ahead.
type dialogue func(s *session) exchange

// fail sets ex's error and class and returns ex.
func (ex exchange) fail(class sdk.Class, format string, args ...any) exchange {
	ex.err, ex.class = fmt.Errorf(format, args...), class
	return ex
}

// protocolError is the class of a reader's error: a malformed reply is the
// protocol's breach, an I/O error is the connection's to classify.
func protocolError(err error) sdk.Class {
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return ClassProtocol
	}
	return ""
}

// smtp speaks SMTP (RFC 3207): the greeting (220), EHLO and its reply,
// which must list STARTTLS, then STARTTLS and its 220.
func smtp(s *session) exchange {
	var ex exchange
	tp := textproto.NewReader(s.r)
	code, msg, err := tp.ReadResponse(220)
	if code != 0 {
		ex.greeting, ex.greetingAt = sanitize(fmt.Sprintf("%d %s", code, firstLine(msg))), time.Now()
	}
	if err != nil {
		return smtpFailure(ex, "greeting", code, err)
	}
	if _, err := fmt.Fprintf(s.w, "EHLO %s\r\n", s.ehlo); err != nil {
		return ex.fail("", "send EHLO: %w", err)
	}
	code, msg, err = tp.ReadResponse(250)
	if err != nil {
		return smtpFailure(ex, "EHLO", code, err)
	}
	var caps []string
	for _, line := range strings.Split(msg, "\n")[1:] { // the first line is the server's name
		if f := strings.Fields(line); len(f) > 0 {
			caps = append(caps, f[0])
		}
	}
	if !hasCapability(caps, "STARTTLS") {
		return ex.fail(ClassUnsupported, "the server does not offer STARTTLS: its EHLO reply lists %s", sanitize(strings.Join(caps, " ")))
	}
	if _, err := io.WriteString(s.w, "STARTTLS\r\n"); err != nil {
		return ex.fail("", "send STARTTLS: %w", err)
	}
	code, msg, err = tp.ReadResponse(220)
	if code != 0 {
		ex.reply = sanitize(fmt.Sprintf("%d %s", code, firstLine(msg)))
	}
	if err != nil {
		return smtpFailure(ex, "STARTTLS", code, err)
	}
	return ex
}

// smtpFailure returns ex failed at step with the reader's error: a reply
// with another code than expected is the server's refusal, a malformed one
// a breach of the protocol.
func smtpFailure(ex exchange, step string, code int, err error) exchange {
	var te *textproto.Error
	if errors.As(err, &te) && code >= 400 && code < 600 {
		return ex.fail(ClassRefused, "%s: the server answered %d %s", step, te.Code, sanitize(firstLine(te.Msg)))
	}
	if errors.As(err, &te) {
		return ex.fail(ClassProtocol, "%s: unexpected reply %d %s", step, te.Code, sanitize(firstLine(te.Msg)))
	}
	return ex.fail(protocolError(err), "%s: %w", step, err)
}

// imap speaks IMAP (RFC 9051 §6.2.1): the greeting (* OK), whose
// CAPABILITY, when it has one, must list STARTTLS, then the tagged
// STARTTLS and its OK; untagged responses before it are skipped.
func imap(s *session) exchange {
	var ex exchange
	tp := textproto.NewReader(s.r)
	line, err := tp.ReadLine()
	if err != nil {
		return ex.fail(protocolError(err), "greeting: %w", err)
	}
	ex.greeting, ex.greetingAt = sanitize(line), time.Now()
	status, text, _ := strings.Cut(strings.TrimPrefix(line, "* "), " ")
	switch {
	case !strings.HasPrefix(line, "* "):
		return ex.fail(ClassProtocol, "the greeting %q is not IMAP's", ex.greeting)
	case strings.EqualFold(status, "BYE"):
		return ex.fail(ClassRefused, "the server greeted with BYE")
	case strings.EqualFold(status, "PREAUTH"):
		return ex.fail(ClassUnsupported, "the server greeted with PREAUTH: STARTTLS is not allowed once authenticated")
	case !strings.EqualFold(status, "OK"):
		return ex.fail(ClassProtocol, "the greeting %q is not IMAP's", ex.greeting)
	}
	if caps, ok := imapCapabilities(text); ok && !hasCapability(caps, "STARTTLS") {
		return ex.fail(ClassUnsupported, "the server does not offer STARTTLS: its greeting lists %s", sanitize(strings.Join(caps, " ")))
	}
	if _, err := io.WriteString(s.w, "a1 STARTTLS\r\n"); err != nil {
		return ex.fail("", "send STARTTLS: %w", err)
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return ex.fail(protocolError(err), "STARTTLS: %w", err)
		}
		if strings.HasPrefix(line, "* ") {
			continue
		}
		ex.reply = sanitize(line)
		status, _, _ := strings.Cut(strings.TrimPrefix(line, "a1 "), " ")
		switch {
		case !strings.HasPrefix(line, "a1 "):
			return ex.fail(ClassProtocol, "STARTTLS: the reply %q is not IMAP's", ex.reply)
		case strings.EqualFold(status, "OK"):
			return ex
		case strings.EqualFold(status, "NO"):
			return ex.fail(ClassRefused, "STARTTLS: the server answered %q", ex.reply)
		case strings.EqualFold(status, "BAD"):
			return ex.fail(ClassUnsupported, "STARTTLS: the server answered %q", ex.reply)
		default:
			return ex.fail(ClassProtocol, "STARTTLS: the reply %q is not IMAP's", ex.reply)
		}
	}
}

// imapCapabilities returns the capabilities of a greeting's text that opens
// with a CAPABILITY response code ("[CAPABILITY IMAP4rev1 STARTTLS] ..."),
// and whether it has one.
func imapCapabilities(text string) ([]string, bool) {
	code, ok := strings.CutPrefix(text, "[")
	if !ok {
		return nil, false
	}
	code, _, ok = strings.Cut(code, "]")
	f := strings.Fields(code)
	if !ok || len(f) == 0 || !strings.EqualFold(f[0], "CAPABILITY") {
		return nil, false
	}
	return f[1:], true
}

// pop3 speaks POP3 (RFC 2595 §4): the greeting (+OK), then STLS and its
// +OK.
func pop3(s *session) exchange {
	var ex exchange
	tp := textproto.NewReader(s.r)
	line, err := tp.ReadLine()
	if err != nil {
		return ex.fail(protocolError(err), "greeting: %w", err)
	}
	ex.greeting, ex.greetingAt = sanitize(line), time.Now()
	switch {
	case strings.HasPrefix(line, "-ERR"):
		return ex.fail(ClassRefused, "the server greeted with %q", ex.greeting)
	case !strings.HasPrefix(line, "+OK"):
		return ex.fail(ClassProtocol, "the greeting %q is not POP3's", ex.greeting)
	}
	if _, err := io.WriteString(s.w, "STLS\r\n"); err != nil {
		return ex.fail("", "send STLS: %w", err)
	}
	if line, err = tp.ReadLine(); err != nil {
		return ex.fail(protocolError(err), "STLS: %w", err)
	}
	ex.reply = sanitize(line)
	switch {
	case strings.HasPrefix(line, "+OK"):
		return ex
	case strings.HasPrefix(line, "-ERR"):
		return ex.fail(ClassUnsupported, "STLS: the server answered %q", ex.reply)
	default:
		return ex.fail(ClassProtocol, "STLS: the reply %q is not POP3's", ex.reply)
	}
}

// sslRequest is PostgreSQL's SSLRequest message: length 8, code 80877103.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// postgres sends PostgreSQL's SSLRequest and reads its one-byte answer:
// 'S' to go ahead, 'N' when the server has TLS off.
func postgres(s *session) exchange {
	var ex exchange
	if _, err := s.w.Write(sslRequest); err != nil {
		return ex.fail("", "send SSLRequest: %w", err)
	}
	b, err := s.r.ReadByte()
	if err != nil {
		return ex.fail("", "SSLRequest: %w", err)
	}
	ex.reply = sanitize(string(b))
	switch b {
	case 'S':
		return ex
	case 'N':
		return ex.fail(ClassUnsupported, "SSLRequest: the server answered N: TLS is off (ssl = off)")
	default:
		return ex.fail(ClassProtocol, "SSLRequest: the answer %q is neither S nor N", ex.reply)
	}
}

// firstLine returns s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

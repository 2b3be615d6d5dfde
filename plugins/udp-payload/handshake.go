package udppayload

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

const (
	// maxDatagram is the most a UDP datagram's length field can say.
	maxDatagram = 65535
	// maxPayload is the largest payload that fits one datagram over IPv4
	// and IPv6 alike (less the 8 bytes of the UDP header and IPv6's 40).
	maxPayload = maxDatagram - 8 - 40
)

// replyHexBytes is how many bytes of the reply reply_hex shows.
const replyHexBytes = 64

// Handshaker sends one datagram over a connected UDP socket and waits for
// the reply.
type Handshaker struct {
	payload []byte
	expect  *regexp.Regexp // nil accepts any reply
	timeout time.Duration  // cap on the exchange, 0 for none
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{}
	text, hexText := sdk.String(cfg, "payload"), sdk.String(cfg, "payload_hex")
	switch {
	case text != "" && hexText != "":
		return nil, sdk.AttrErrorf("payload_hex", "Two payloads", "Set payload or payload_hex, not both.")
	case text != "":
		h.payload = []byte(text)
	case hexText != "":
		b, err := hex.DecodeString(strings.Join(strings.Fields(hexText), ""))
		if err != nil {
			return nil, sdk.AttrErrorf("payload_hex", "Invalid hexadecimal payload",
				"payload_hex must be pairs of hexadecimal digits, spaces allowed between them: %s.", err)
		}
		h.payload = b
	default:
		return nil, sdk.AttrErrorf("payload", "Missing payload",
			"Set payload (text) or payload_hex (bytes in hexadecimal): the datagram to send.")
	}
	if len(h.payload) > maxPayload {
		return nil, sdk.AttrErrorf("payload", "Payload too large", "The payload has %d bytes; one UDP datagram carries at most %d.", len(h.payload), maxPayload)
	}
	if re := sdk.String(cfg, "expect"); re != "" {
		var err error
		if h.expect, err = regexp.Compile(re); err != nil {
			return nil, sdk.AttrErrorf("expect", "Invalid regular expression", "expect does not compile: %s.", err)
		}
	}
	var err error
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return h, nil
}

// Handshake sends the payload over req.Conn, a connected UDP socket
// (dial-udp's), and reads one reply: the phase "udp" runs from the send to
// the reply's arrival. No reply in time, an ICMP error the kernel reports
// on the socket (port unreachable: udp.refused), or a reply that does not
// match expect are Failures with a nil error. Any other connection than a
// UDP socket is a Go error: the pipeline is wrong.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if _, ok := req.Conn.(net.PacketConn); !ok {
		return nil, fmt.Errorf("udp-payload needs a UDP socket (dialer plugin dial-udp), got a %s connection", req.Conn.LocalAddr().Network())
	}
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

	buf := make([]byte, maxDatagram)
	span := sdk.StartSpan(Phase, callAt)
	// A context already done sends nothing: AfterFunc's deadline comes
	// from a goroutine of its own, after a fast server may have replied.
	err := ctx.Err()
	if err == nil {
		_, err = req.Conn.Write(h.payload)
	}
	n := 0
	if err == nil {
		n, err = req.Conn.Read(buf)
	}
	reply := buf[:n]
	matched := err == nil && (h.expect == nil || h.expect.MatchString(latin1(reply)))
	phase := span.End(matched, map[string]any{"request_bytes": len(h.payload)})
	if err == nil {
		phase.Attrs["reply_bytes"] = n
		phase.Attrs["reply_hex"] = hex.EncodeToString(reply[:min(n, replyHexBytes)])
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}}
	switch {
	case matched:
	case err != nil:
		resp.Failure = &sdk.Failure{Phase: Phase, Class: classify(ctx, err),
			Message: fmt.Sprintf("udp exchange with %s: %v", req.Address, err)}
	default:
		resp.Failure = &sdk.Failure{Phase: Phase, Class: ClassReplyMismatch,
			Message: fmt.Sprintf("udp exchange with %s: the reply of %d bytes does not match %q", req.Address, n, h.expect)}
	}
	return resp, nil
}

// latin1 returns b with each byte as one character (ISO 8859-1), so that
// expect's \xHH matches the byte HH: Go's regexp reads bytes as UTF-8, and a
// byte that is not valid UTF-8 (0x80 and above, alone) would read as
// U+FFFD, which no \xHH matches.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// classify returns the failure class of a failed send or receive.
func classify(ctx context.Context, err error) sdk.Class {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ClassUnreachable
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	return ClassError
}

var _ sdk.Handshaker = (*Handshaker)(nil)

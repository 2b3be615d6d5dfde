package sshhandshake

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"

	"github.com/probe-dev/probe/core/sdk"
)

// Handshaker runs an SSH client's version and key exchange over a
// connection, up to the server's proof of its host key.
type Handshaker struct {
	pin          string        // "SHA256:..." the host key must have; "" for any
	hostKeyAlgos []string      // host key algorithms to offer, nil for the defaults
	timeout      time.Duration // cap on the handshake, 0 for none
}

// clientVersion is the version string probe sends.
const clientVersion = "SSH-2.0-probe"

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema; the first time it is called in a process it warms the
// process up for handshakes (warm). A bad attribute value gives an
// *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h, err := configure(cfg)
	if err != nil {
		return nil, err
	}
	warmOnce.Do(func() { _ = warm() })
	return h, nil
}

// configure is New without the warm-up.
func configure(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{pin: sdk.String(cfg, "host_key_fingerprint"), hostKeyAlgos: sdk.Strings(cfg, "host_key_algorithms")}
	if h.pin != "" {
		b64, ok := strings.CutPrefix(h.pin, "SHA256:")
		sum, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		if !ok || err != nil || len(sum) != 32 {
			return nil, sdk.AttrErrorf("host_key_fingerprint", "Invalid host key fingerprint",
				"host_key_fingerprint must be a SHA256 fingerprint as `ssh-keygen -l -f KEY` prints it, "+
					"\"SHA256:\" and 43 characters of base64, got %q.", h.pin)
		}
		h.pin = "SHA256:" + base64.RawStdEncoding.EncodeToString(sum)
	}
	known := append(ssh.SupportedAlgorithms().HostKeys, ssh.InsecureAlgorithms().HostKeys...)
	for _, a := range h.hostKeyAlgos {
		if !slices.Contains(known, a) {
			return nil, sdk.AttrErrorf("host_key_algorithms", "Unsupported host key algorithm",
				"%q is not a host key algorithm golang.org/x/crypto/ssh knows; use some of %s.", a, strings.Join(known, ", "))
		}
	}
	var err error
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return h, nil
}

// errGotHostKey ends the handshake once the server has proved its host
// key: going on would mean authenticating.
var errGotHostKey = errors.New("host key received")

// Handshake exchanges versions and runs the key exchange over req.Conn
// until the server has signed the exchange with its host key, then stops:
// the phase "ssh" covers the version exchange and the key exchange up to
// the verified signature. The host key that does not match
// host_key_fingerprint, a server that does not speak SSH or shares no
// algorithm, and a timeout are Failures with a nil error. The connection is
// left unusable (the key exchange is not finished and its deadline is in
// the past): ssh is the last handshake of a pipeline.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	rec := &recorder{Conn: req.Conn}
	if d, ok := ctx.Deadline(); ok {
		_ = req.Conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = req.Conn.SetDeadline(time.Now()) })
	defer stop()

	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:              "probe",
		ClientVersion:     clientVersion,
		HostKeyAlgorithms: h.hostKeyAlgos,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotHostKey
		},
	}
	span := sdk.StartSpan(Phase, callAt)
	start := time.Now()
	_, _, _, err := ssh.NewClientConn(rec, req.Address.String(), cfg)
	// x/crypto/ssh's reader may still wait on the connection: end it.
	_ = req.Conn.SetDeadline(time.Unix(1, 0))
	gotKey := errors.Is(err, errGotHostKey)
	var fingerprint string
	if gotKey {
		fingerprint = ssh.FingerprintSHA256(key)
	}
	ok := gotKey && (h.pin == "" || subtle.ConstantTimeCompare([]byte(fingerprint), []byte(h.pin)) == 1)
	phase := span.End(ok, nil)

	rec.addAttrs(phase.Attrs, start)
	if gotKey {
		phase.Attrs["host_key_type"] = key.Type()
		phase.Attrs["host_key_fingerprint"] = fingerprint
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}}
	switch {
	case ok:
	case gotKey:
		resp.Failure = &sdk.Failure{Phase: Phase, Class: ClassHostKeyMismatch,
			Message: fmt.Sprintf("ssh handshake with %s: host key %s %s, want %s", req.Address, key.Type(), fingerprint, h.pin)}
	default:
		resp.Failure = &sdk.Failure{Phase: Phase, Class: classify(ctx, err),
			Message: fmt.Sprintf("ssh handshake with %s: %v", req.Address, err)}
	}
	return resp, nil
}

// classify returns the failure class of a handshake that ended before the
// host key arrived.
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

// maxRecord is how many bytes of each direction a recorder keeps: the
// version lines and the KEXINIT packets (at most 35,000 bytes, RFC 4253
// §6.1) fit.
const maxRecord = 64 << 10

// recorder is the connection as x/crypto/ssh sees it: it keeps the first
// bytes read and written, so that the versions and the KEXINIT messages can
// be read from them, notes when the server's version line arrived, and
// does not close the connection, which the caller owns.
type recorder struct {
	net.Conn

	mu       sync.Mutex
	in, out  []byte
	scanned  int       // bytes of in searched for the end of the version line
	bannerAt time.Time // when the server's version line had arrived
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.in) < maxRecord {
		r.in = append(r.in, b[:min(n, maxRecord-len(r.in))]...)
	}
	if r.bannerAt.IsZero() && versionEnd(r.in, &r.scanned) >= 0 {
		r.bannerAt = time.Now()
	}
	return n, err
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	if len(r.out) < maxRecord {
		r.out = append(r.out, b[:min(len(b), maxRecord-len(r.out))]...)
	}
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// Close does nothing: x/crypto/ssh closes the connection when its
// handshake fails, as it does here by design.
func (r *recorder) Close() error { return nil }

// addAttrs adds what the recorded bytes tell to attrs: the server's
// version, when it arrived (banner_ms, from start), and the algorithms the
// two KEXINIT messages agree on.
func (r *recorder) addAttrs(attrs map[string]any, start time.Time) {
	r.mu.Lock()
	in, out, bannerAt := slices.Clone(r.in), slices.Clone(r.out), r.bannerAt
	r.mu.Unlock()
	version, server, err := parseStream(in)
	if version == "" {
		return
	}
	attrs["server_version"] = sanitize(version)
	if !bannerAt.IsZero() {
		attrs["banner_ms"] = sdk.Milliseconds(bannerAt.Sub(start).Round(time.Microsecond))
	}
	_, client, cerr := parseStream(out)
	if err != nil || cerr != nil {
		return
	}
	if kex := agree(client.KexAlgos, server.KexAlgos); kex != "" {
		attrs["kex"] = kex
	}
	if alg := agree(client.ServerHostKeyAlgos, server.ServerHostKeyAlgos); alg != "" {
		attrs["host_key_algorithm"] = alg
	}
}

// sanitize returns s with its bytes outside printable ASCII escaped, so a
// hostile server's version line cannot carry terminal escapes.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		return s
	}
	q := fmt.Sprintf("%+q", s)
	return q[1 : len(q)-1]
}

var _ sdk.Handshaker = (*Handshaker)(nil)

package quicdialer

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Dialer opens QUIC connections and measures their handshakes.
type Dialer struct {
	serverName string
	alpn       []string
	roots      *x509.CertPool // nil for the system's
	insecure   bool
	sessions   tls.ClientSessionCache // nil unless zero_rtt
	timeout    time.Duration
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. It reads ca_file. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{
		serverName: sdk.String(cfg, "server_name"),
		alpn:       sdk.Strings(cfg, "alpn"),
		insecure:   sdk.Bool(cfg, "insecure_skip_verify"),
	}
	if len(d.alpn) == 0 {
		return nil, sdk.AttrErrorf("alpn", "No ALPN protocol", "QUIC needs an application protocol: give alpn one, such as [\"h3\"].")
	}
	for _, p := range d.alpn {
		if p == "" || len(p) > 255 {
			return nil, sdk.AttrErrorf("alpn", "Invalid ALPN protocol", "Each alpn protocol must be 1 to 255 bytes long, got %q.", p)
		}
	}
	var err error
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	if path := sdk.String(cfg, "ca_file"); path != "" {
		if d.roots, err = sdk.LoadRoots("ca_file", path); err != nil {
			return nil, err
		}
	}
	if sdk.Bool(cfg, "zero_rtt") {
		d.sessions = tls.NewLRUClientSessionCache(64)
	}
	return d, nil
}

// Dial opens a QUIC connection to req.Address. The phase "quic" runs from
// the first packet to the handshake's completion (with 0-RTT, the
// connection is usable before; the phase still ends at completion). The
// certificate is verified by Dial itself, so that its facts are reported
// whether or not it verifies. A failed handshake is a Failure with a nil
// error; on success the response's Handle is the *quic.Conn.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	callAt := time.Now()
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	name, sni := d.names(req)
	var (
		state     *tls.ConnectionState
		verifyErr error
	)
	tlsConf := &tls.Config{
		ServerName:         name,
		NextProtos:         d.alpn,
		RootCAs:            d.roots,
		ClientSessionCache: d.sessions,
		InsecureSkipVerify: true, // VerifyConnection verifies instead, and records what it saw
		VerifyConnection: func(cs tls.ConnectionState) error {
			state = &cs
			if cs.DidResume { // verified when the session was made
				return nil
			}
			_, verifyErr = sdk.VerifyPeer(cs.PeerCertificates, name, d.roots)
			if d.insecure {
				return nil
			}
			return verifyErr
		},
	}
	dial := quic.DialAddr
	if d.sessions != nil {
		dial = quic.DialAddrEarly
	}
	span := sdk.StartSpan(Phase, callAt)
	conn, err := dial(ctx, req.Address.String(), tlsConf, &quic.Config{})
	if err == nil && d.sessions != nil {
		select {
		case <-conn.HandshakeComplete():
		case <-ctx.Done():
			err = ctx.Err()
			_ = conn.CloseWithError(0, "")
		}
	}
	phase := span.End(err == nil, nil)
	phase.Attrs["server_name"] = sni
	phase.Attrs["remote"] = req.Address.String()
	if err == nil {
		qs := conn.ConnectionState()
		state = &qs.TLS
		phase.Attrs["quic_version"] = qs.Version.String()
		phase.Attrs["used_0rtt"] = qs.Used0RTT
		phase.Attrs["local"] = conn.LocalAddr().String()
	}
	if state != nil {
		sdk.AddTLSFacts(phase.Attrs, state, verifyErr)
	}
	resp := &sdk.DialResponse{Phases: []sdk.Phase{phase}}
	if err == nil {
		resp.Handle = &sdk.Handle{Kind: sdk.ConnQUIC, Value: conn, Local: conn.LocalAddr(), Remote: conn.RemoteAddr(),
			Close: func() error { return conn.CloseWithError(0, "") }}
		return resp, nil
	}
	class := classify(ctx, err)
	if verifyErr != nil && !d.insecure {
		class = sdk.CertClass(verifyErr)
	}
	resp.Failure = &sdk.Failure{Phase: Phase, Class: class, Message: fmt.Sprintf("quic handshake with %s: %v", req.Address, err)}
	return resp, nil
}

// names returns the name to verify the certificate against and the SNI
// sent, as the tls plugin does: server_name, else the target's host, else
// the address; an IP literal is verified against the certificate's IP
// addresses and not sent.
func (d *Dialer) names(req *sdk.DialRequest) (name, sni string) {
	name = cmp.Or(d.serverName, req.Host)
	if name == "" {
		return req.Address.Addr().WithZone("").String(), ""
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip.WithZone("").String(), ""
	}
	return name, name
}

// classify returns the failure class of a QUIC dial error other than a
// failed verification. quic-go reports a TLS alert from the server as a
// transport error with a crypto error code (0x100 + the alert).
func classify(ctx context.Context, err error) sdk.Class {
	var (
		te   *quic.TransportError
		idle *quic.IdleTimeoutError
		hs   *quic.HandshakeTimeoutError
		vn   *quic.VersionNegotiationError
		ne   net.Error
	)
	switch {
	case sdk.FDLimit(err):
		return sdk.ClassFDLimit
	case errors.As(err, &vn):
		return ClassVersion
	case errors.As(err, &te) && te.ErrorCode.IsCryptoError():
		return sdk.ClassTLSAlert
	case errors.As(err, &idle), errors.As(err, &hs):
		return ClassTimeout
	}
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout
	}
	var app *quic.ApplicationError
	if errors.As(err, &te) || errors.As(err, &app) {
		return ClassProtocol
	}
	return ClassError
}

var _ sdk.Dialer = (*Dialer)(nil)

package tlshandshake

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// Handshaker runs a TLS client handshake over a connection and reports the
// negotiated parameters and the server certificate's facts.
type Handshaker struct {
	serverName string           // name to verify; "" means the request's host
	alpn       []string         // protocols to offer, nil for none
	roots      *x509.CertPool   // trusted roots, nil for the system's
	insecure   bool             // complete the handshake when verification fails
	minVersion uint16           // 0 means crypto/tls's default (1.2)
	maxVersion uint16           // 0 means crypto/tls's default (1.3)
	groups     []tls.CurveID    // key exchanges to offer, nil for crypto/tls's default
	timeout    time.Duration    // cap on the handshake, 0 for none
	clientCert *tls.Certificate // sent when the server asks; nil for none
	revocation string           // revocationOff, revocationOCSP or revocationCRL
}

// versions maps the version names of the schema to crypto/tls's.
var versions = map[string]uint16{
	"1.0": tls.VersionTLS10,
	"1.1": tls.VersionTLS11,
	"1.2": tls.VersionTLS12,
	"1.3": tls.VersionTLS13,
}

// keyExchanges maps the key exchange names of the schema to crypto/tls's
// groups.
var keyExchanges = map[string]tls.CurveID{
	"X25519MLKEM768":     tls.X25519MLKEM768,
	"SecP256r1MLKEM768":  tls.SecP256r1MLKEM768,
	"SecP384r1MLKEM1024": tls.SecP384r1MLKEM1024,
	"X25519":             tls.X25519,
	"P256":               tls.CurveP256,
	"P384":               tls.CurveP384,
	"P521":               tls.CurveP521,
}

// New returns a Handshaker configured by cfg, a value of the plugin's
// handshake schema. It reads ca_file, and warms the process up for
// handshakes the first time it is called, and for the system's roots the
// first time it is called without ca_file (warmUp). A bad attribute value
// gives an *sdk.AttrError.
func New(cfg cty.Value) (*Handshaker, error) {
	h := &Handshaker{
		serverName: sdk.String(cfg, "server_name"),
		alpn:       sdk.Strings(cfg, "alpn"),
		insecure:   sdk.Bool(cfg, "insecure_skip_verify"),
	}
	for _, p := range h.alpn {
		if p == "" || len(p) > 255 {
			return nil, sdk.AttrErrorf("alpn", "Invalid ALPN protocol",
				"Each alpn protocol must be 1 to 255 bytes long, got %q.", p)
		}
	}
	var err error
	if h.minVersion, err = version(cfg, "min_version"); err != nil {
		return nil, err
	}
	if h.maxVersion, err = version(cfg, "max_version"); err != nil {
		return nil, err
	}
	if lo, hi := cmp.Or(h.minVersion, tls.VersionTLS12), cmp.Or(h.maxVersion, tls.VersionTLS13); lo > hi {
		return nil, sdk.AttrErrorf("max_version", "Invalid TLS version range",
			"max_version %s is below min_version %s (the default when unset is 1.2); lower min_version too.",
			tls.VersionName(hi), tls.VersionName(lo))
	}
	for _, name := range sdk.Strings(cfg, "key_exchanges") {
		id, ok := keyExchanges[name]
		if !ok {
			return nil, sdk.AttrErrorf("key_exchanges", "Invalid key exchange",
				"Each key_exchanges entry must be one of %s, got %q.", keyExchangeNames(), name)
		}
		h.groups = append(h.groups, id)
	}
	if h.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	if path := sdk.String(cfg, "ca_file"); path != "" {
		if h.roots, err = sdk.LoadRoots("ca_file", path); err != nil {
			return nil, err
		}
	}
	if h.clientCert, err = loadClientCert(sdk.String(cfg, "cert_file"), sdk.String(cfg, "key_file")); err != nil {
		return nil, err
	}
	switch h.revocation = sdk.String(cfg, "revocation"); h.revocation {
	case revocationOff, revocationOCSP, revocationCRL:
	default:
		return nil, sdk.AttrErrorf("revocation", "Invalid revocation check",
			`revocation must be "off", "ocsp" or "crl", got %q.`, h.revocation)
	}
	warmUp(h.roots == nil)
	return h, nil
}

// keyExchangeNames lists the names key_exchanges accepts, quoted.
func keyExchangeNames() string {
	names := slices.Sorted(maps.Keys(keyExchanges))
	for i, n := range names {
		names[i] = strconv.Quote(n)
	}
	return strings.Join(names, ", ")
}

// version returns the TLS version the attribute name of cfg asks for, 0
// when unset.
func version(cfg cty.Value, name string) (uint16, error) {
	s := sdk.String(cfg, name)
	if s == "" {
		return 0, nil
	}
	v, ok := versions[s]
	if !ok {
		return 0, sdk.AttrErrorf(name, "Invalid TLS version",
			"%s must be one of \"1.0\", \"1.1\", \"1.2\" or \"1.3\", got %q.", name, s)
	}
	return v, nil
}

// loadClientCert reads the client certificate and its key, nil when
// neither is set.
func loadClientCert(certFile, keyFile string) (*tls.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, sdk.AttrErrorf("key_file", "Key without certificate", "key_file is set but cert_file is not.")
	case keyFile == "":
		return nil, sdk.AttrErrorf("cert_file", "Certificate without key", "cert_file is set but key_file is not.")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, sdk.AttrErrorf("cert_file", "Invalid client certificate", "Cannot load cert_file and key_file: %s.", err)
	}
	return &cert, nil
}

// Handshake runs the TLS handshake over req.Conn. The phase "tls" covers the
// handshake alone. The certificate is verified by Handshake itself, so that
// its facts are reported whether or not it verifies; a failed handshake or
// verification is reported as a Failure with a nil error. With revocation
// set, a verified certificate's revocation status is checked inside the
// phase, after the handshake. On success the
// response's Conn is the *tls.Conn. When ctx ends before the handshake does,
// req.Conn is closed.
func (h *Handshaker) Handshake(ctx context.Context, req *sdk.HandshakeRequest) (*sdk.HandshakeResponse, error) {
	callAt := time.Now()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	name, sni := h.names(req)
	var (
		state     *tls.ConnectionState // as it was when the certificate arrived
		chains    [][]*x509.Certificate
		verifyErr error
		asked     bool // the server asked for a client certificate
	)
	conn := tls.Client(req.Conn, &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			if h.clientCert == nil {
				return &tls.Certificate{}, nil // none to send
			}
			return h.clientCert, nil
		},
		ServerName: name, // crypto/tls sends no SNI for an IP literal
		NextProtos: h.alpn,
		MinVersion: h.minVersion,
		MaxVersion: h.maxVersion,
		// nil offers crypto/tls's default, X25519MLKEM768 first.
		CurvePreferences: h.groups,
		// VerifyConnection verifies instead, and records what it saw.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			state = &cs
			chains, verifyErr = sdk.VerifyPeer(cs.PeerCertificates, name, h.roots)
			if h.insecure {
				return nil
			}
			return verifyErr
		},
	})
	span := sdk.StartSpan(sdk.PhaseTLS, callAt)
	err := conn.HandshakeContext(ctx)
	var (
		rev        *revocation
		revFailure *sdk.Failure
	)
	if err == nil && verifyErr == nil && h.revocation != revocationOff && len(chains) > 0 && len(chains[0]) > 1 {
		rev = checkRevocation(ctx, h.revocation, chains[0][0], chains[0][1], conn.ConnectionState().OCSPResponse)
		revFailure = rev.failure(ctx)
	}
	phase := span.End(err == nil && revFailure == nil, make(map[string]any, attrRoom))
	phase.Attrs["server_name"] = sni
	if err == nil {
		cs := conn.ConnectionState()
		state = &cs
	}
	if state != nil {
		sdk.AddTLSFacts(phase.Attrs, state, verifyErr)
		addChainFacts(phase.Attrs, state.PeerCertificates, chains, verifyErr)
	}
	if h.clientCert != nil {
		addClientCert(phase.Attrs, h.clientCert, asked)
	}
	if rev != nil {
		rev.attrs(phase.Attrs, h.revocation)
	}
	resp := &sdk.HandshakeResponse{Phases: []sdk.Phase{phase}}
	if revFailure != nil {
		revFailure.Message = fmt.Sprintf("tls handshake with %s: %s", req.Address, revFailure.Message)
		resp.Failure = revFailure
		return resp, nil
	}
	if err == nil {
		resp.Conn = conn
		return resp, nil
	}
	class := classify(ctx, err)
	if verifyErr != nil && !h.insecure { // the handshake aborted on verifyErr
		class = sdk.CertClass(verifyErr)
	}
	resp.Failure = &sdk.Failure{Phase: sdk.PhaseTLS, Class: class,
		Message: fmt.Sprintf("tls handshake with %s: %v", req.Address, err)}
	return resp, nil
}

// attrRoom is room for every attribute a handshake reports: 17, and
// those of a client certificate (4) and of a revocation check (6). The map
// made that large at once does not grow, copying itself, as they come.
const attrRoom = 27

// names returns the name to verify the certificate against (server_name,
// else the request's host, else the IP the connection goes to) and the server
// name sent in the handshake: the same, or "" for an IP literal, which is
// verified against the certificate's IP addresses and never sent.
func (h *Handshaker) names(req *sdk.HandshakeRequest) (name, sni string) {
	name = cmp.Or(h.serverName, req.Host)
	if name == "" {
		return req.Address.Addr().WithZone("").String(), ""
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip.WithZone("").String(), ""
	}
	return name, name
}

// addChainFacts adds the facts blackbox_exporter's TLS families report:
// the leaf's SHA-256 fingerprint and serial number (hex, the serial's bytes
// with their leading zeros, as blackbox prints it), the earliest end of
// validity among the certificates the server sent, and, when the
// certificate verified, the end of validity of the verified chain that
// lasts longest (each chain ends with its earliest-expiring certificate).
func addChainFacts(attrs map[string]any, peer []*x509.Certificate, chains [][]*x509.Certificate, verifyErr error) {
	if len(peer) == 0 {
		return
	}
	attrs["cert_fingerprint_sha256"], attrs["cert_serial"] = sdk.LeafIDs(peer[0])
	attrs["certs_earliest_not_after"] = earliestNotAfter(peer).UTC().Format(time.RFC3339)
	if verifyErr != nil || len(chains) == 0 {
		return
	}
	var last time.Time
	for _, chain := range chains {
		if end := earliestNotAfter(chain); end.After(last) {
			last = end
		}
	}
	attrs["chain_not_after"] = last.UTC().Format(time.RFC3339)
}

// earliestNotAfter returns the earliest NotAfter of certs.
func earliestNotAfter(certs []*x509.Certificate) time.Time {
	earliest := certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(earliest) {
			earliest = c.NotAfter
		}
	}
	return earliest
}

// addClientCert adds the facts of the client certificate to attrs, and
// whether the server asked for it.
func addClientCert(attrs map[string]any, cert *tls.Certificate, asked bool) {
	attrs["client_cert_requested"] = asked
	if leaf := cert.Leaf; leaf != nil {
		attrs["client_cert_subject"] = leaf.Subject.String()
		attrs["client_cert_not_after"] = leaf.NotAfter.UTC().Format(time.RFC3339)
		attrs["client_cert_days_left"] = int(math.Floor(time.Until(leaf.NotAfter).Hours() / 24))
	}
}

// classify returns the failure class of a handshake error other than a
// failed verification. crypto/tls reports an alert from the server as a
// *net.OpError whose Op is "remote error".
func classify(ctx context.Context, err error) sdk.Class {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "remote error":
		return sdk.ClassTLSAlert
	case errors.Is(err, syscall.ECONNRESET):
		return sdk.ClassTCPReset
	}
	if c := sdk.ContextClass(ctx, sdk.ClassTLSTimeout); c != "" {
		return c
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sdk.ClassTLSTimeout
	}
	return sdk.ClassTLSProtocol
}

var _ sdk.Handshaker = (*Handshaker)(nil)

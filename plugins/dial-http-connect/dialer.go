package dialhttpconnect

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/probe-dev/probe/core/sdk"
)

// maxHeader bounds the proxy's response head.
const maxHeader = 16 << 10

// Dialer connects through an HTTP proxy's CONNECT.
type Dialer struct {
	proxy   netip.AddrPort
	tls     *tls.Config // for an https proxy, nil for http
	auth    string      // the Proxy-Authorization value, "" for none
	remote  bool        // ask for the host name, not the address
	timeout time.Duration
}

// New returns a Dialer configured by cfg, a value of the plugin's dialer
// schema. It reads ca_file. A bad attribute value gives an *sdk.AttrError.
func New(cfg cty.Value) (*Dialer, error) {
	d := &Dialer{}
	raw := sdk.String(cfg, "proxy")
	u, err := url.Parse(raw)
	bad := func() error {
		return sdk.AttrErrorf("proxy", "Invalid proxy URL",
			`proxy must be "http://" or "https://" and an IP address with an optional port, such as "http://127.0.0.1:3128", got %q.`, raw)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, bad()
	}
	addr, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]"))
	if err != nil {
		return nil, bad()
	}
	port := uint16(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, bad()
		}
		port = uint16(n)
	}
	d.proxy = netip.AddrPortFrom(addr.Unmap(), port)
	if u.Scheme == "https" {
		d.tls = &tls.Config{ServerName: cmp.Or(sdk.String(cfg, "server_name"), d.proxy.Addr().String()), MinVersion: tls.VersionTLS12}
		if path := sdk.String(cfg, "ca_file"); path != "" {
			if d.tls.RootCAs, err = loadRoots(path); err != nil {
				return nil, err
			}
		}
	} else {
		for _, attr := range []string{"server_name", "ca_file"} {
			if sdk.String(cfg, attr) != "" {
				return nil, sdk.AttrErrorf(attr, "Not used by an http proxy", "%s applies to an https proxy only; proxy is %q.", attr, raw)
			}
		}
	}
	user, pass := sdk.String(cfg, "username"), sdk.String(cfg, "password")
	switch {
	case user == "" && pass != "":
		return nil, sdk.AttrErrorf("password", "Password without username", "password is set but username is not.")
	case strings.Contains(user, ":"):
		return nil, sdk.AttrErrorf("username", "Invalid username", "A basic authentication username cannot hold a colon.")
	case user != "":
		d.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	switch r := sdk.String(cfg, "resolve"); r {
	case "local":
	case "remote":
		d.remote = true
	default:
		return nil, sdk.AttrErrorf("resolve", "Invalid resolve", `resolve must be "local" or "remote", got %q.`, r)
	}
	if d.timeout, err = sdk.Duration(cfg, "timeout"); err != nil {
		return nil, err
	}
	return d, nil
}

// loadRoots reads a PEM file of root certificates.
func loadRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, sdk.AttrErrorf("ca_file", "Unreadable CA file", "Cannot read ca_file: %s.", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, sdk.AttrErrorf("ca_file", "Invalid CA file", "ca_file %s holds no PEM certificate.", path)
	}
	return pool, nil
}

// Dial connects to the proxy (phase "connect", as dial-tcp measures it)
// and, in phase "proxy", makes TLS to an https proxy and asks it to CONNECT
// to the target. The returned connection is the socket to the proxy (or
// the TLS connection over it), now a tunnel to the target.
func (d *Dialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	return sdk.DialProxy(ctx, req, sdk.ProxyDial{Proxy: d.proxy, Timeout: d.timeout, Remote: d.remote, Verb: "CONNECT", Tunnel: d.connect}), nil
}

// connect runs the proxy phase over raw: TLS to an https proxy, then the
// CONNECT request and its response head, read byte by byte so that nothing
// the target sends after it is taken from the tunnel. It returns the
// connection to use (to close on error), and on error the failure class.
func (d *Dialer) connect(ctx context.Context, raw net.Conn, target string, attrs map[string]any) (net.Conn, sdk.Class, error) {
	conn := raw
	if deadline, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stop()
	if d.tls != nil {
		start := time.Now()
		tc := tls.Client(raw, d.tls)
		err := tc.HandshakeContext(ctx)
		attrs["tls_ms"] = sdk.Milliseconds(time.Since(start))
		if err != nil {
			return raw, classify(ctx, err, ClassTLS), fmt.Errorf("TLS with the proxy: %w", err)
		}
		conn = tc
	}
	var head bytes.Buffer
	head.WriteString("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n")
	if d.auth != "" {
		head.WriteString("Proxy-Authorization: " + d.auth + "\r\n")
	}
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		return conn, classify(ctx, err, ClassProtocol), err
	}
	got, err := readHead(conn)
	if err != nil {
		return conn, classify(ctx, err, ClassProtocol), err
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), &http.Request{Method: http.MethodConnect})
	if err != nil {
		return conn, ClassProtocol, fmt.Errorf("not an HTTP response: %w", err)
	}
	attrs["status"] = res.StatusCode
	if res.StatusCode/100 == 2 {
		_ = raw.SetDeadline(time.Time{})
		return conn, "", nil
	}
	return conn, statusClass(res), fmt.Errorf("HTTP %s", res.Status)
}

// readHead reads up to and including the empty line that ends a response
// head, one byte at a time.
func readHead(r io.Reader) ([]byte, error) {
	var b [1]byte
	out := make([]byte, 0, 256)
	for !bytes.HasSuffix(out, []byte("\r\n\r\n")) && !bytes.HasSuffix(out, []byte("\n\n")) {
		if len(out) >= maxHeader {
			return nil, fmt.Errorf("response head over %d bytes", maxHeader)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read the response: %w", err)
		}
		out = append(out, b[0])
	}
	return out, nil
}

// statusClass returns the class of a CONNECT refused with res's status.
// tinyproxy says "500 Unable to connect" when the target is unreachable;
// squid and others 502, 503 or 504.
func statusClass(res *http.Response) sdk.Class {
	switch res.StatusCode {
	case http.StatusProxyAuthRequired, http.StatusUnauthorized:
		return ClassAuth
	case http.StatusForbidden, http.StatusMethodNotAllowed:
		return ClassRefused
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ClassTargetUnreachable
	case http.StatusInternalServerError:
		if strings.Contains(strings.ToLower(res.Status), "connect") {
			return ClassTargetUnreachable
		}
	}
	return ClassError
}

// classify returns the class of an I/O error in the proxy phase: a
// timeout, else other.
func classify(ctx context.Context, err error, other sdk.Class) sdk.Class {
	if c := sdk.ContextClass(ctx, ClassTimeout); c != "" {
		return c
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ClassTimeout
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return ClassProtocol
	}
	return other
}

var _ sdk.Dialer = (*Dialer)(nil)

package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/probe-dev/probe/internal/lab"
	"github.com/quic-go/quic-go"
)

// Caddy is Debian's caddy serving HTTP/1.1, HTTP/2 and HTTP/3 on one
// loopback port (TCP and UDP), with a certificate for api.probe.test,
// *.probe.test and 127.0.0.1 issued by a lab CA: GET / answers 200
// "probe lab caddy\n", /missing 404. It runs in the foreground with its
// own configuration and data in a temporary directory, its admin endpoint
// off.
type Caddy struct {
	process
	// Addr is where caddy listens, TCP and UDP.
	Addr netip.AddrPort
}

// StartCaddy starts caddy with a certificate from ca and waits until it
// answers a QUIC handshake. It fails when caddy is not installed.
func StartCaddy(ca *lab.CA) (_ *Caddy, err error) {
	bin, err := program("caddy", "caddy")
	if err != nil {
		return nil, err
	}
	c := &Caddy{process: process{name: "caddy"}}
	defer closeOnError(&c.process, &err)
	if c.dir, err = newDir("caddy", nil); err != nil {
		return nil, err
	}
	now := time.Now()
	cert, err := ca.Issue([]string{"api.probe.test", "*.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := writeCert(c.dir, cert, nil)
	if err != nil {
		return nil, err
	}
	if c.Addr, err = FreePort(); err != nil {
		return nil, err
	}
	conf := filepath.Join(c.dir, "Caddyfile")
	err = writeFile(conf, fmt.Appendf(nil, `{
	admin off
	skip_install_trust
	auto_https disable_redirects
	storage file_system %[1]q
	servers {
		protocols h1 h2 h3
	}
}
https://:%[2]d {
	bind 127.0.0.1
	tls %[3]q %[4]q
	respond /missing 404
	respond "probe lab caddy
" 200
}
`, filepath.Join(c.dir, "data"), c.Addr.Port(), certFile, keyFile), 0o600, nil)
	if err != nil {
		return nil, err
	}
	c.env = append(os.Environ(), "HOME="+c.dir, "XDG_DATA_HOME="+c.dir, "XDG_CONFIG_HOME="+c.dir)
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "api.probe.test", NextProtos: []string{"h3"}}
	err = c.start(bin, []string{"run", "--config", conf, "--adapter", "caddyfile"}, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		conn, err := quic.DialAddr(ctx, c.Addr.String(), tlsConf, nil)
		if err != nil {
			return fmt.Errorf("QUIC handshake: %w", err)
		}
		return conn.CloseWithError(0, "")
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

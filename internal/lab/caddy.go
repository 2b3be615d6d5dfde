package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
)

// Caddy is Debian's caddy serving HTTP/1.1, HTTP/2 and HTTP/3 on one
// loopback port (TCP and UDP), with a certificate for api.probe.test,
// *.probe.test and 127.0.0.1 issued by a lab CA: GET / answers 200
// "probe lab caddy\n", /missing 404, /slow 200 after 30 ms. It runs in the
// foreground with its own configuration and data in a temporary
// directory, its admin endpoint off.
type Caddy struct {
	Addr netip.AddrPort

	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
	mu     sync.Mutex
	output bytes.Buffer
}

// StartCaddy starts caddy with a certificate from ca and waits until it
// answers a QUIC handshake. It fails when caddy is not installed.
func StartCaddy(ca *CA) (c *Caddy, err error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, fmt.Errorf("caddy is not installed (apt-get install caddy; make deps does): %w", err)
	}
	c = &Caddy{exited: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start caddy: %w", err), c.Close())
			c = nil
		}
	}()
	if c.dir, err = os.MkdirTemp("", "probe-caddy-"); err != nil {
		return c, err
	}
	now := time.Now()
	cert, err := ca.Issue([]string{"api.probe.test", "*.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		return c, err
	}
	certFile, keyFile := filepath.Join(c.dir, "cert.pem"), filepath.Join(c.dir, "key.pem")
	if err := writeKeyPair(cert, certFile, keyFile); err != nil {
		return c, err
	}
	// A UDP port free now; caddy binds it and the TCP port of that number.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return c, err
	}
	c.Addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	_ = pc.Close()
	conf := filepath.Join(c.dir, "Caddyfile")
	err = os.WriteFile(conf, fmt.Appendf(nil, `{
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
`, filepath.Join(c.dir, "data"), c.Addr.Port(), certFile, keyFile), 0o600)
	if err != nil {
		return c, err
	}
	c.cmd = exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "HOME="+c.dir, "XDG_DATA_HOME="+c.dir, "XDG_CONFIG_HOME="+c.dir)
	c.cmd.Stdout, c.cmd.Stderr = (*lockedWriter)(c), (*lockedWriter)(c)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return c, err
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	return c, c.waitReady(ca.Pool())
}

// waitReady waits up to 10 s for a QUIC handshake with caddy to succeed.
func (c *Caddy) waitReady(roots *x509.CertPool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		conn, err := quic.DialAddr(ctx, c.Addr.String(), &tls.Config{RootCAs: roots, ServerName: "api.probe.test", NextProtos: []string{"h3"}}, nil)
		cancel()
		if err == nil {
			return conn.CloseWithError(0, "")
		}
		select {
		case <-c.exited:
			return fmt.Errorf("caddy exited: %s", c.Output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no QUIC handshake with caddy on %s after 10s (%v): %s", c.Addr, err, c.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output returns what caddy has written so far.
func (c *Caddy) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output.String()
}

// lockedWriter collects caddy's output.
type lockedWriter Caddy

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.output.Write(b)
}

// Close stops caddy and removes its directory. It works after a failed
// start.
func (c *Caddy) Close() error {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	if c.dir != "" {
		return os.RemoveAll(c.dir)
	}
	return nil
}

// writeKeyPair writes cert's chain and its private key as PEM files.
func writeKeyPair(cert tls.Certificate, certFile, keyFile string) error {
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return err
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
}

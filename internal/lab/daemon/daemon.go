// Package daemon starts real servers from Debian's packages for tests:
// unbound (DNS over UDP, TCP and HTTPS), exim4 (SMTP), dovecot (IMAP and
// POP3), postgresql, OpenSSH's sshd, microsocks and tinyproxy (proxies),
// nginx and openssl's OCSP responder (with a PKI for revocation), each in the foreground on a free loopback
// port, with its own configuration and state in a temporary directory and
// certificates from a test CA. Servers nobody here wrote are what the
// protocol plugins are tested against.
//
// A program that is not installed is an error that names its Debian package
// (.ci/deps installs them): a test fails on it, it never skips. Where a
// daemon refuses to run as root or drops privileges (sshd, postgres, exim's
// receiving processes), its directory belongs to the user it runs as.
package daemon

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// startTimeout is how long a daemon has to answer after it started.
const startTimeout = 15 * time.Second

// process is a daemon running in the foreground, and its directory.
type process struct {
	name   string
	dir    string
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan error
	env    []string // the environment, when not this process's

	closeOnce sync.Once
	closeErr  error
}

// Output returns what the daemon printed so far, for a test's failure
// message.
func (p *process) Output() string { return p.output.String() }

// Close stops the daemon (SIGTERM, then SIGKILL after 5 s), waits for it and
// removes its directory. It works after a failed start, and more than once.
func (p *process) Close() error {
	p.closeOnce.Do(func() {
		if p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if p.dir != "" {
			p.closeErr = removeAll(p.dir)
		}
	})
	return p.closeErr
}

// removeAll removes dir, trying again for a second while it fails: the
// children of a daemon (dovecot's) may still be leaving files in it for a
// moment after the daemon itself exited.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	for deadline := time.Now().Add(time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		err = os.RemoveAll(dir)
	}
	return err
}

// syncBuffer is a bytes.Buffer safe for a daemon's output and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// program returns the path of the program name of Debian package pkg: on
// PATH, else in one of dirs (globs; Debian puts daemons in /usr/sbin).
func program(name, pkg string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range append(dirs, "/usr/sbin", "/sbin") {
		matches, _ := filepath.Glob(filepath.Join(d, name))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.Mode()&0o111 != 0 {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("%s is not installed (apt-get install %s; .ci/deps and make deps do)", name, pkg)
}

// account is a user a daemon runs as, or owns its files as.
type account struct {
	uid, gid int
}

// lookup returns the account of the user name.
func lookup(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &account{uid: uid, gid: gid}, nil
}

// unprivileged returns the account of the user name when this process is
// root, nil (this process's own user) otherwise.
func unprivileged(name string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	return lookup(name)
}

// newDir creates the daemon's directory, owned by owner when not nil.
func newDir(name string, owner *account) (string, error) {
	dir, err := os.MkdirTemp("", "probe-"+name+"-")
	if err != nil {
		return "", err
	}
	if err := chown(owner, dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// chown gives the paths to owner; a nil owner leaves them as they are.
func chown(owner *account, paths ...string) error {
	if owner == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, owner.uid, owner.gid); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data to path with mode and gives it to owner.
func writeFile(path string, data []byte, mode os.FileMode, owner *account) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return chown(owner, path)
}

// writeCert writes cert's chain and its key in PEM to dir/cert.pem and
// dir/key.pem (mode 0600), owned by owner, and returns their paths.
func writeCert(dir string, cert tls.Certificate, owner *account) (certFile, keyFile string, err error) {
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", fmt.Errorf("marshal the key: %w", err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeFile(certFile, chain, 0o644, owner); err != nil {
		return "", "", err
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600, owner); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// freePort returns a loopback port that is free for TCP and UDP just now.
func freePort() (int, error) {
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, errors.New("no loopback port free for both UDP and TCP")
}

// start runs bin with args in the foreground as as (nil: this process's
// user), and waits until ready returns nil. On failure the caller closes p.
func (p *process) start(bin string, args []string, as *account, ready func() error) error {
	p.output = &syncBuffer{}
	p.exited = make(chan error, 1)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = p.dir
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if as != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(as.uid), Gid: uint32(as.gid)}}
	}
	if err := p.cmd.Start(); err != nil {
		p.cmd = nil
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	for deadline := time.Now().Add(startTimeout); ; {
		select {
		case err := <-p.exited:
			p.exited <- err // for Close
			return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.Output())
		default:
		}
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %v\n%s", p.name, startTimeout, err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialReady returns a ready function that connects to addr and reads from
// it until want returns true of what arrived, for a second at most.
func dialReady(addr string, want func([]byte) bool) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		var got []byte
		buf := make([]byte, 512)
		for !want(got) {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return fmt.Errorf("read from %s: %w (got %q)", addr, err, got)
			}
		}
		return nil
	}
}

// closeOnError closes p when *err is set: a Start function's deferred
// clean-up.
func closeOnError(p *process, err *error) {
	if *err != nil {
		*err = errors.Join(*err, p.Close())
	}
}

// readLogs returns the contents of the named files of dir, for an error
// message.
func readLogs(dir string, names ...string) string {
	var out []byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			out = append(out, b...)
		}
	}
	return string(out)
}

// listening returns a ready function that succeeds once something accepts
// a TCP connection on addr.
func listening(addr netip.AddrPort) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// loopback returns 127.0.0.1:port.
func loopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}

// FreePort returns a loopback address whose port is free for TCP and UDP
// just now, for a server a test configures itself.
func FreePort() (netip.AddrPort, error) {
	port, err := freePort()
	if err != nil {
		return netip.AddrPort{}, err
	}
	return loopback(port), nil
}

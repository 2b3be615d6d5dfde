// Package daemon runs the Debian programs that probe's tests talk to
// (microsocks, tinyproxy, nginx, openssl's OCSP responder) on loopback
// ports, each with its own configuration in the test's temporary directory,
// and stops them when the test ends. A missing program fails the test, as
// the standards want: .ci/deps installs them.
package daemon

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Find returns the path of program name: on PATH, else in /usr/sbin or
// /sbin, where Debian puts daemons. It fails tb when there is none.
func Find(tb testing.TB, name, pkg string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	tb.Fatalf("%s is not installed (apt-get install %s; .ci/deps does)", name, pkg)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreePort returns a loopback TCP port free just now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Process is a running program.
type Process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// Output returns what the program wrote so far to stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// Start runs the program at bin with args in dir, waits until it accepts
// TCP connections on addr (10 s at most), and stops it when tb ends:
// SIGTERM, then SIGKILL after 5 s.
func Start(tb testing.TB, addr, dir, bin string, args ...string) *Process {
	tb.Helper()
	return StartReady(tb, "listen on "+addr, func(*Process) bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, dir, bin, args...)
}

// StartReady is Start for a program that says it is ready otherwise than
// by accepting a connection: ready reports whether it is, what says
// what it waits for.
func StartReady(tb testing.TB, what string, ready func(*Process) bool, dir, bin string, args ...string) *Process {
	tb.Helper()
	p := &Process{cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-p.exited:
			tb.Fatalf("%s exited: %v\n%s", bin, p.err, p.Output())
		default:
		}
		if ready(p) {
			return p
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not %s within 10s:\n%s", bin, what, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the writes of a process's output
// and a test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Microsocks starts microsocks, a SOCKS5 proxy, on a loopback port and
// returns its address. With user set it requires that username and pass.
func Microsocks(tb testing.TB, user, pass string) string {
	tb.Helper()
	bin := Find(tb, "microsocks", "microsocks")
	addr := Addr(FreePort(tb))
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-i", host, "-p", port}
	if user != "" {
		args = append(args, "-u", user, "-P", pass)
	}
	Start(tb, addr, tb.TempDir(), bin, args...)
	return addr
}

// Tinyproxy starts tinyproxy, an HTTP proxy, on a loopback port with the
// configuration lines extra added to its own, and returns its address.
// It allows CONNECT to any port.
func Tinyproxy(tb testing.TB, extra string) string {
	tb.Helper()
	bin := Find(tb, "tinyproxy", "tinyproxy")
	dir := tb.TempDir()
	port := FreePort(tb)
	conf := filepath.Join(dir, "tinyproxy.conf")
	data := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nDisableViaHeader Yes\n%s\n", port, extra)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	Start(tb, Addr(port), dir, bin, "-d", "-c", conf)
	return Addr(port)
}

// Unbound starts unbound (NLnet Labs' resolver) in the foreground, serving
// zone (its local-zone and local-data lines) over UDP and TCP on one
// loopback port and DNS over HTTPS (path /dns-query) on another, with the
// certificate and key in certFile and keyFile. Every name outside the
// zone is refused, so it never recurses. It returns the two addresses.
func Unbound(tb testing.TB, certFile, keyFile, zone string) (dns, doh string) {
	tb.Helper()
	bin := Find(tb, "unbound", "unbound")
	dir := tb.TempDir()
	port, dohPort := freeUDPAndTCP(tb), FreePort(tb)
	conf := filepath.Join(dir, "unbound.conf")
	data := fmt.Sprintf(`server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@%[1]d
	interface: 127.0.0.1@%[2]d
	port: %[1]d
	https-port: %[2]d
	http-endpoint: "/dns-query"
	tls-service-key: %[3]q
	tls-service-pem: %[4]q
	access-control: 127.0.0.0/8 allow
	do-ip6: no
	do-not-query-localhost: yes
	module-config: "iterator"
	do-daemonize: no
	use-syslog: no
	logfile: ""
	chroot: ""
	username: ""
	directory: %[5]q
	pidfile: %[6]q
	local-zone: "." refuse
%[7]s
remote-control:
	control-enable: no
`, port, dohPort, keyFile, certFile, dir, filepath.Join(dir, "unbound.pid"), zone)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	Start(tb, Addr(dohPort), dir, bin, "-d", "-c", conf)
	return Addr(port), Addr(dohPort)
}

// freeUDPAndTCP returns a loopback port free for both UDP and TCP just now.
func freeUDPAndTCP(tb testing.TB) int {
	tb.Helper()
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	tb.Fatal("no loopback port free for both UDP and TCP")
	return 0
}

// Nginx starts nginx in the foreground, one process, with servers, the
// contents of its http block (server blocks listening on loopback), and
// waits until it accepts connections on addr, one of their addresses.
// Paths in servers are the caller's; nginx's own files go to a temporary
// directory.
func Nginx(tb testing.TB, addr, servers string) {
	tb.Helper()
	bin := Find(tb, "nginx", "nginx-light")
	dir := tb.TempDir()
	var temps strings.Builder
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "\t%s_temp_path %q;\n", t, filepath.Join(dir, t))
	}
	conf := filepath.Join(dir, "nginx.conf")
	data := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %q;
error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off;
%s%s
}
`, filepath.Join(dir, "nginx.pid"), temps.String(), servers)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	Start(tb, addr, dir, bin, "-p", dir, "-c", conf, "-e", "stderr")
}

// OCSPResponder starts openssl's OCSP responder on a free port, answering
// for the certificates of index (openssl ca's index.txt format) with
// responses signed by the CA in caFile and caKey, and returns its address.
// It listens on every address of port: openssl ocsp binds no other way.
// It is ready when it says so: a connection closed without a request
// stalls it (openssl 3.0), so none is made to see whether it listens.
func OCSPResponder(tb testing.TB, port int, index, caFile, caKey string) string {
	tb.Helper()
	bin := Find(tb, "openssl", "openssl")
	StartReady(tb, "wait for OCSP requests", func(p *Process) bool {
		return strings.Contains(p.Output(), "waiting for OCSP client connections")
	}, tb.TempDir(), bin, "ocsp", "-index", index, "-port", strconv.Itoa(port),
		"-rsigner", caFile, "-rkey", caKey, "-CA", caFile, "-ignore_err", "-nmin", "60")
	return Addr(port)
}

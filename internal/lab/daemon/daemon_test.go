package daemon

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
)

// readLine connects to addr and returns the first line the server sends.
func readLine(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return line
}

func TestSSHD(t *testing.T) {
	s, err := StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	if line := readLine(t, s.Addr.String()); !strings.HasPrefix(line, "SSH-2.0-OpenSSH_") {
		t.Errorf("banner %q", line)
	}
	if s.HostKeyType != "ssh-ed25519" || !strings.HasPrefix(s.HostKeyFingerprint, "SHA256:") {
		t.Errorf("host key %s %s", s.HostKeyType, s.HostKeyFingerprint)
	}
}

// testCert is a certificate for 127.0.0.1 and mail.probe.test from a new
// test CA.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	ca, err := lab.NewCA("daemon test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mail.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// closer closes c when the test ends and fails it if that fails.
func closer(t *testing.T, c interface{ Close() error }) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
}

func TestUnbound(t *testing.T) {
	u, err := StartUnbound(UnboundConfig{})
	if err != nil {
		t.Fatal(err)
	}
	closer(t, u)
}

func TestExim(t *testing.T) {
	e, err := StartExim(testCert(t))
	if err != nil {
		t.Fatal(err)
	}
	closer(t, e)
	if line := readLine(t, e.Addr.String()); !strings.HasPrefix(line, "220 mail.probe.test ESMTP Exim") {
		t.Errorf("greeting %q", line)
	}
}

func TestDovecot(t *testing.T) {
	d, err := StartDovecot(testCert(t))
	if err != nil {
		t.Fatal(err)
	}
	closer(t, d)
	if line := readLine(t, d.IMAP.String()); !strings.HasPrefix(line, "* OK") || !strings.Contains(line, "STARTTLS") {
		t.Errorf("imap greeting %q", line)
	}
	if line := readLine(t, d.POP3.String()); !strings.HasPrefix(line, "+OK") {
		t.Errorf("pop3 greeting %q", line)
	}
}

func TestPostgres(t *testing.T) {
	p, err := StartPostgres(testCert(t))
	if err != nil {
		t.Fatal(err)
	}
	closer(t, p)
}

// TestMissingProgram checks that a program that is not installed is an
// error that names the Debian package to install.
func TestMissingProgram(t *testing.T) {
	_, err := program("probe-no-such-daemon", "probe-no-such-package")
	if err == nil || !strings.Contains(err.Error(), "apt-get install probe-no-such-package") {
		t.Errorf("program = %v, want an error naming the package", err)
	}
}

package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Postgres is PostgreSQL (Debian's postgresql) on a loopback port with TLS
// on, from a certificate of a test CA: it answers an SSLRequest with 'S'.
// initdb and postgres refuse to run as root: as root they run as the
// postgres user, which owns the directory.
type Postgres struct {
	process
	// Addr is the address postgres listens on, 127.0.0.1.
	Addr netip.AddrPort
}

// StartPostgres creates a cluster (initdb) and starts postgres on it with
// cert, about 1.5 s.
func StartPostgres(cert tls.Certificate) (_ *Postgres, err error) {
	const dirs = "/usr/lib/postgresql/*/bin"
	initdb, err := program("initdb", "postgresql", dirs)
	if err != nil {
		return nil, err
	}
	bin, err := program("postgres", "postgresql", dirs)
	if err != nil {
		return nil, err
	}
	as, err := unprivileged("postgres")
	if err != nil {
		return nil, err
	}
	p := &Postgres{process: process{name: "postgres"}}
	defer closeOnError(&p.process, &err)
	if p.dir, err = newDir("postgres", as); err != nil {
		return nil, err
	}
	data := filepath.Join(p.dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-A", "trust", "-U", "probe", "--no-sync", "-E", "UTF8")
	if as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(as.uid), Gid: uint32(as.gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	certFile, keyFile, err := writeCert(p.dir, cert, as)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	args := []string{"-D", data, "-c", "listen_addresses=127.0.0.1", "-c", fmt.Sprint("port=", port),
		"-c", "unix_socket_directories=" + p.dir, "-c", "ssl=on",
		"-c", "ssl_cert_file=" + certFile, "-c", "ssl_key_file=" + keyFile, "-c", "fsync=off"}
	// Ready when it answers an SSLRequest: 'S'.
	err = p.start(bin, args, as, func() error {
		c, err := net.DialTimeout("tcp", p.Addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
			return err
		}
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil {
			return err
		}
		if b[0] != 'S' {
			return fmt.Errorf("SSLRequest answered %q", b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

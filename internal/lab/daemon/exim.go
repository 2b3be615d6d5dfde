package daemon

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/netip"
	"path/filepath"
)

// Exim is Debian's exim4 (exim4-daemon-light) accepting SMTP on a loopback
// port and offering STARTTLS with a certificate from a test CA. It greets
// without the date ("220 mail.probe.test ESMTP Exim 4.96") and accepts no
// mail: every recipient is refused. It needs root: exim runs a
// configuration given with -C as root only, and its receiving processes
// run as Debian-exim, which owns the directory.
type Exim struct {
	process
	// Addr is the address exim listens on, 127.0.0.1.
	Addr netip.AddrPort
}

// StartExim starts exim (-bdf -C config) with cert for STARTTLS.
func StartExim(cert tls.Certificate) (_ *Exim, err error) {
	bin, err := program("exim4", "exim4-daemon-light")
	if err != nil {
		return nil, err
	}
	as, err := lookup("Debian-exim")
	if err != nil {
		return nil, fmt.Errorf("exim4: %w (installed with exim4-base)", err)
	}
	e := &Exim{process: process{name: "exim4"}}
	defer closeOnError(&e.process, &err)
	if e.dir, err = newDir("exim", as); err != nil {
		return nil, err
	}
	certFile, keyFile, err := writeCert(e.dir, cert, as)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e.Addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	conf := filepath.Join(e.dir, "exim.conf")
	// exim reads a configuration given with -C only when root owns it.
	err = writeFile(conf, fmt.Appendf(nil, `primary_hostname = mail.probe.test
smtp_banner = $primary_hostname ESMTP Exim $version_number
daemon_smtp_ports = %d
local_interfaces = 127.0.0.1
spool_directory = %[2]s/spool
log_file_path = %[2]s/%%slog
pid_file_path = %[2]s/exim.pid
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts = *
tls_certificate = %[3]s
tls_privatekey = %[4]s
acl_smtp_rcpt = refuse_all
begin acl
refuse_all:
  deny
`, port, e.dir, certFile, keyFile), 0o644, nil)
	if err != nil {
		return nil, err
	}
	err = e.start(bin, []string{"-bdf", "-C", conf}, nil, dialReady(e.Addr.String(), func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("220 ")) && bytes.Contains(b, []byte("\n"))
	}))
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, readLogs(e.dir, "mainlog", "paniclog"))
	}
	return e, nil
}

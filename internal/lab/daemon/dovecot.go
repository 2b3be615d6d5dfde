package daemon

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/netip"
	"path/filepath"
)

// Dovecot is Debian's dovecot (dovecot-imapd, dovecot-pop3d) accepting IMAP
// and POP3 on two loopback ports and offering STARTTLS (STLS) with a
// certificate from a test CA. No user can log in. It needs root: dovecot's
// master process runs its login processes as dovenull.
type Dovecot struct {
	process
	// IMAP and POP3 are the addresses of the two services, 127.0.0.1.
	IMAP, POP3 netip.AddrPort
}

// StartDovecot starts dovecot (-F -c config) with cert for STARTTLS.
func StartDovecot(cert tls.Certificate) (_ *Dovecot, err error) {
	bin, err := program("dovecot", "dovecot-imapd dovecot-pop3d")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{process: process{name: "dovecot"}}
	defer closeOnError(&d.process, &err)
	if d.dir, err = newDir("dovecot", nil); err != nil {
		return nil, err
	}
	certFile, keyFile, err := writeCert(d.dir, cert, nil)
	if err != nil {
		return nil, err
	}
	imap, err := freePort()
	if err != nil {
		return nil, err
	}
	pop3, err := freePort()
	if err != nil {
		return nil, err
	}
	lo := netip.MustParseAddr("127.0.0.1")
	d.IMAP, d.POP3 = netip.AddrPortFrom(lo, uint16(imap)), netip.AddrPortFrom(lo, uint16(pop3))
	conf := filepath.Join(d.dir, "dovecot.conf")
	err = writeFile(conf, fmt.Appendf(nil, `protocols = imap pop3
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = yes
ssl_cert = <%[2]s
ssl_key = <%[3]s
passdb {
  driver = static
  args = nopassword=y allow_nets=192.0.2.0/24
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service imap-login {
  inet_listener imap {
    port = %[4]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[5]d
  }
  inet_listener pop3s {
    port = 0
  }
}
`, d.dir, certFile, keyFile, imap, pop3), 0o644, nil)
	if err != nil {
		return nil, err
	}
	greeted := func(prefix string) func([]byte) bool {
		return func(b []byte) bool { return bytes.HasPrefix(b, []byte(prefix)) && bytes.Contains(b, []byte("\n")) }
	}
	imapReady, pop3Ready := dialReady(d.IMAP.String(), greeted("* OK")), dialReady(d.POP3.String(), greeted("+OK"))
	err = d.start(bin, []string{"-F", "-c", conf}, nil, func() error {
		if err := imapReady(); err != nil {
			return err
		}
		return pop3Ready()
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

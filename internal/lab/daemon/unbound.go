package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"
)

// Unbound is NLnet Labs' unbound (Debian's package) answering its local
// zone over UDP and TCP on a loopback port, and over HTTPS when asked, and
// refusing every other name, so that it never sends a packet off the
// machine.
type Unbound struct {
	process
	// Addr is the address unbound listens on, 127.0.0.1, UDP and TCP.
	Addr netip.AddrPort
	// DoH is where it answers DNS over HTTPS (path /dns-query), when
	// UnboundConfig asked for it.
	DoH netip.AddrPort
}

// UnboundConfig is what unbound serves.
type UnboundConfig struct {
	// Zone is unbound's local-zone and local-data lines; empty, the zone
	// probe.test. with api.probe.test. (A 127.0.0.1) and v6.probe.test.
	// (AAAA ::1).
	Zone string
	// CertFile and KeyFile, when set, are the certificate and key (PEM) of
	// a DNS over HTTPS listener on a port of its own.
	CertFile, KeyFile string
}

// defaultZone is what unbound serves by default.
const defaultZone = `	local-zone: "probe.test." static
	local-data: "api.probe.test. 60 IN A 127.0.0.1"
	local-data: "v6.probe.test. 60 IN AAAA ::1"`

// StartUnbound starts unbound (-d -c config).
func StartUnbound(cfg UnboundConfig) (_ *Unbound, err error) {
	bin, err := program("unbound", "unbound")
	if err != nil {
		return nil, err
	}
	u := &Unbound{process: process{name: "unbound"}}
	defer closeOnError(&u.process, &err)
	if u.dir, err = newDir("unbound", nil); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	u.Addr = loopback(port)
	zone, doh := cfg.Zone, ""
	if zone == "" {
		zone = defaultZone
	}
	if cfg.CertFile != "" {
		if u.DoH, err = FreePort(); err != nil {
			return nil, err
		}
		doh = fmt.Sprintf("\tinterface: 127.0.0.1@%d\n\thttps-port: %d\n\thttp-endpoint: \"/dns-query\"\n\ttls-service-key: %q\n\ttls-service-pem: %q\n",
			u.DoH.Port(), u.DoH.Port(), cfg.KeyFile, cfg.CertFile)
	}
	conf := filepath.Join(u.dir, "unbound.conf")
	err = writeFile(conf, fmt.Appendf(nil, `server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@%[1]d
%[2]s	port: %[1]d
	access-control: 127.0.0.0/8 allow
	do-ip6: no
	do-not-query-localhost: yes
	module-config: "iterator"
	do-daemonize: no
	use-syslog: no
	logfile: ""
	chroot: ""
	username: ""
	directory: %[3]q
	pidfile: %[4]q
	local-zone: "." refuse
%[5]s
remote-control:
	control-enable: no
`, port, doh, u.dir, filepath.Join(u.dir, "unbound.pid"), zone), 0o600, nil)
	if err != nil {
		return nil, err
	}
	// A query over TCP for api.probe.test's A record: ready once it is
	// answered.
	query := []byte{0, 32, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'a', 'p', 'i', 5, 'p', 'r', 'o', 'b', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
	err = u.start(bin, []string{"-d", "-c", conf}, nil, func() error {
		if u.DoH.IsValid() {
			if err := listening(u.DoH)(); err != nil {
				return err
			}
		}
		c, err := net.DialTimeout("tcp", u.Addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(query); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 512))
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

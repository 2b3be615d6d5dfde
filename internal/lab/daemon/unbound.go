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
	// DoT and DoH are where it answers DNS over TLS and DNS over HTTPS
	// (path /dns-query), when UnboundConfig asked for them.
	DoT, DoH netip.AddrPort
}

// UnboundConfig is what unbound serves.
type UnboundConfig struct {
	// Zone is unbound's local-zone and local-data lines; empty, the zone
	// probe.test. with api.probe.test. (A 127.0.0.1) and v6.probe.test.
	// (AAAA ::1), and the zone zone.probe.test. with a SOA (serial
	// UnboundSerial), an NS, an MX and a TXT record (UnboundZone).
	Zone string
	// CertFile and KeyFile, when set, are the certificate and key (PEM) of
	// a DNS over TLS and a DNS over HTTPS listener, each on a port of its
	// own.
	CertFile, KeyFile string
}

// defaultZone is what unbound serves by default.
const defaultZone = `	local-zone: "probe.test." static
	local-data: "api.probe.test. 60 IN A 127.0.0.1"
	local-data: "v6.probe.test. 60 IN AAAA ::1"
` + UnboundZone

// UnboundSerial is the SOA serial of zone.probe.test. in UnboundZone.
const UnboundSerial = 2026120601

// UnboundZone is a zone of its own, zone.probe.test., with the records a
// DNS probe asks an authoritative server for beside addresses: its SOA
// (serial UnboundSerial), an NS, an MX and a TXT record. Being a zone of
// its own, its SOA is in no negative answer for probe.test.'s names.
const UnboundZone = `	local-zone: "zone.probe.test." static
	local-data: "zone.probe.test. 3600 IN SOA ns.zone.probe.test. hostmaster.zone.probe.test. 2026120601 7200 900 1209600 300"
	local-data: "zone.probe.test. 3600 IN NS ns.zone.probe.test."
	local-data: "zone.probe.test. 300 IN MX 10 mail.zone.probe.test."
	local-data: 'zone.probe.test. 300 IN TXT "v=spf1 -all"'
`

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
		if u.DoT, err = FreePort(); err != nil {
			return nil, err
		}
		if u.DoH, err = FreePort(); err != nil {
			return nil, err
		}
		doh = fmt.Sprintf("\tinterface: 127.0.0.1@%[1]d\n\tinterface: 127.0.0.1@%[2]d\n\ttls-port: %[1]d\n\thttps-port: %[2]d\n"+
			"\thttp-endpoint: \"/dns-query\"\n\ttls-service-key: %[3]q\n\ttls-service-pem: %[4]q\n",
			u.DoT.Port(), u.DoH.Port(), cfg.KeyFile, cfg.CertFile)
	}
	conf := filepath.Join(u.dir, "unbound.conf")
	err = writeFile(conf, fmt.Appendf(nil, `server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1@%[1]d
%[2]s	port: %[1]d
	access-control: 127.0.0.0/8 allow
	outgoing-interface: 127.0.0.1
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
	// A query for api.probe.test's A record, over UDP and over TCP (with
	// its length first): ready once both are answered and the DoT and DoH
	// ports accept connections.
	query := []byte{0, 32, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'a', 'p', 'i', 5, 'p', 'r', 'o', 'b', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
	ask := func(network string, q []byte) error {
		c, err := net.DialTimeout(network, u.Addr.String(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Write(q); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 512))
		return err
	}
	err = u.start(bin, []string{"-d", "-c", conf}, nil, func() error {
		for _, a := range []netip.AddrPort{u.DoT, u.DoH} {
			if !a.IsValid() {
				continue
			}
			if err := listening(a)(); err != nil {
				return err
			}
		}
		if err := ask("udp", query[2:]); err != nil {
			return err
		}
		return ask("tcp", query)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

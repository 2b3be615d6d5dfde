// Package lab is the loopback lab (DESIGN §8): an authoritative DNS server, TLS and TCP servers and a CA,
// all on 127.0.0.1, each able to delay or misbehave on purpose. Tests, benchmarks and `probe demo` use it.
// Beside the standard lab (Start), a test can start grpc-go's health service (StartGRPCHealth) and
// Debian's caddy serving HTTP/3 (daemon.StartCaddy, in internal/lab/daemon).
package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// labZone is the DNS zone the standard lab serves.
const labZone = "probe.test."

// Lab is the standard lab used by tests and `probe demo`: zone "probe.test." and these servers.
type Lab struct {
	CA *CA
	// DNS answers api, tcp, expired, wrongname, untrusted, slowtls, reset -> 127.0.0.1; slow -> 127.0.0.1
	// after 30ms; servfail -> SERVFAIL; refused -> REFUSED; silent never answers; v6 -> ::1 only;
	// other names NXDOMAIN.
	DNS       *DNSServer
	TLS       *TLSServer     // cert for api.probe.test, *.probe.test, 127.0.0.1 from CA, valid now
	SlowTLS   *TLSServer     // same cert, 40ms Delay
	Expired   *TLSServer     // cert expired yesterday
	WrongName *TLSServer     // cert for other.example only
	Untrusted *TLSServer     // cert for api.probe.test from a different CA
	Reset     *TLSServer     // Reset: true
	TCP       *TCPServer     // plain TCP, no banner
	Refused   netip.AddrPort // nothing listening: held, so no server gets it
	CAFile    string         // path of the CA PEM in Dir
	Dir       string         // temp dir created by Start, removed by Close

	refused *RefusedPort // holds Refused's port
}

// Start starts the standard lab. On failure it closes what it had started.
func Start() (l *Lab, err error) {
	l = &Lab{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("start lab: %w", err), l.Close())
			l = nil
		}
	}()
	if l.Dir, err = os.MkdirTemp("", "probe-lab-"); err != nil {
		return l, err
	}
	if l.CA, err = NewCA("probe lab CA"); err != nil {
		return l, err
	}
	l.CAFile = filepath.Join(l.Dir, "ca.pem")
	if err = l.CA.WritePEM(l.CAFile); err != nil {
		return l, err
	}
	other, err := NewCA("untrusted CA")
	if err != nil {
		return l, err
	}

	now := time.Now()
	names, ips := []string{"api.probe.test", "*.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	certs := []struct {
		dst      **TLSServer
		ca       *CA
		names    []string
		ips      []net.IP
		from, to time.Time
		delay    time.Duration
	}{
		{&l.TLS, l.CA, names, ips, now.Add(-time.Hour), now.Add(24 * time.Hour), 0},
		{&l.SlowTLS, l.CA, names, ips, now.Add(-time.Hour), now.Add(24 * time.Hour), 40 * time.Millisecond},
		{&l.Expired, l.CA, names, ips, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), 0},
		{&l.WrongName, l.CA, []string{"other.example"}, nil, now.Add(-time.Hour), now.Add(24 * time.Hour), 0},
		{&l.Untrusted, other, names, ips, now.Add(-time.Hour), now.Add(24 * time.Hour), 0},
	}
	for _, c := range certs {
		cert, err := c.ca.Issue(c.names, c.ips, c.from, c.to)
		if err != nil {
			return l, err
		}
		if *c.dst, err = StartTLS(TLSOptions{Cert: cert, Delay: c.delay}); err != nil {
			return l, err
		}
	}
	if l.Reset, err = StartTLS(TLSOptions{Reset: true}); err != nil {
		return l, err
	}
	if l.TCP, err = StartTCP(""); err != nil {
		return l, err
	}
	if l.refused, err = ReserveRefused(); err != nil {
		return l, err
	}
	l.Refused = l.refused.Addr

	if l.DNS, err = StartDNS(labZone); err != nil {
		return l, err
	}
	local, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	for _, name := range []string{"api", "tcp", "expired", "wrongname", "untrusted", "slowtls", "reset", "slow"} {
		l.DNS.AddAddr(name, local)
	}
	l.DNS.AddAddr("v6", v6)
	l.DNS.SetBehavior("slow", DNSBehavior{Delay: 30 * time.Millisecond})
	l.DNS.SetBehavior("servfail", DNSBehavior{Rcode: dns.RcodeServerFailure})
	l.DNS.SetBehavior("refused", DNSBehavior{Rcode: dns.RcodeRefused})
	l.DNS.SetBehavior("silent", DNSBehavior{Silent: true})
	return l, nil
}

// Close stops every server that was started and removes Dir. It works after a partial Start.
func (l *Lab) Close() error {
	var errs []error
	if l.DNS != nil {
		errs = append(errs, l.DNS.Close())
	}
	for _, s := range []*TLSServer{l.TLS, l.SlowTLS, l.Expired, l.WrongName, l.Untrusted, l.Reset} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if l.TCP != nil {
		errs = append(errs, l.TCP.Close())
	}
	if l.refused != nil {
		errs = append(errs, l.refused.Close())
	}
	if l.Dir != "" {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	return errors.Join(errs...)
}

// Vars returns the HCL variables a lab pipeline needs, as strings.
func (l *Lab) Vars() map[string]string {
	port := func(a netip.AddrPort) string { return strconv.Itoa(int(a.Port())) }
	return map[string]string{
		"dns_server":     l.DNS.Addr,
		"ca_file":        l.CAFile,
		"tls_port":       port(l.TLS.Addr),
		"slow_tls_port":  port(l.SlowTLS.Addr),
		"expired_port":   port(l.Expired.Addr),
		"wrongname_port": port(l.WrongName.Addr),
		"untrusted_port": port(l.Untrusted.Addr),
		"reset_port":     port(l.Reset.Addr),
		"tcp_port":       port(l.TCP.Addr),
		"refused_port":   port(l.Refused),
	}
}

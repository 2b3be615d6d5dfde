package pluginhost_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// daemons are the servers from Debian's packages that the conformance
// suite probes with the protocol plugins.
type daemons struct {
	sshd     *daemon.SSHD
	unbound  *daemon.Unbound
	exim     *daemon.Exim
	postgres *daemon.Postgres
	// closedUDP is a UDP port on 127.0.0.1 where nothing listens.
	closedUDP netip.AddrPort
}

// startDaemons starts the daemons for t; they stop when it ends.
func startDaemons(t *testing.T) *daemons {
	t.Helper()
	var d daemons
	var err error
	if d.sshd, err = daemon.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.sshd.Close() })
	if d.unbound, err = daemon.StartUnbound(daemon.UnboundConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.unbound.Close() })
	// Certificates from the lab's CA, which the tls component trusts.
	cert, err := testLab.CA.Issue([]string{"mail.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d.exim, err = daemon.StartExim(cert); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.exim.Close() })
	if d.postgres, err = daemon.StartPostgres(cert); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.postgres.Close() })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.closedUDP = netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	return &d
}

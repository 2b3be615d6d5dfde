package pluginhost_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/lab/daemon"
	"github.com/zclconf/go-cty/cty"
)

// startHealthServers starts the lab's gRPC health server twice, plain and
// over TLS with a certificate of the test lab's CA for api.probe.test and
// 127.0.0.1. They stop when the test ends.
func startHealthServers(t *testing.T) (plain, overTLS *lab.GRPCHealthServer) {
	t.Helper()
	now := time.Now()
	cert, err := testLab.CA.Issue([]string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err = lab.StartGRPCHealth(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	if overTLS, err = lab.StartGRPCHealth(&cert); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = overTLS.Close() })
	return plain, overTLS
}

// startCaddy starts Debian's caddy serving HTTP/3 with a certificate of the
// test lab's CA, until the test ends.
func startCaddy(t *testing.T) *daemon.Caddy {
	t.Helper()
	c, err := daemon.StartCaddy(testLab.CA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestQUICStaysInItsProcess checks that a QUIC connection never leaves the
// process that dialed it: the plugin process holds it for its own http3
// handshake, and with the quic dialer in one process and http3 in another
// the attempt fails as plugin.error with a message that says so, whichever
// side is out of process.
func TestQUICStaysInItsProcess(t *testing.T) {
	remote := load(t, newHost(t), builtinBinary())
	caddy := startCaddy(t)
	s := spec{resolver: comp{plugin: "dns-system"},
		dialer:     comp{"quic", map[string]cty.Value{"ca_file": cty.StringVal(testLab.CAFile)}},
		handshakes: []comp{{plugin: "http3"}}}
	// Dialer and handshake in the plugin process, the resolver in probe's:
	// no Sequences request, the plugin holds the connection between the
	// two calls.
	held := placement{"resolver in process", map[sdk.Kind]bool{sdk.KindDialer: true, sdk.KindHandshake: true}}
	a := probeOnce(t, s.build(t, held, remote), "127.0.0.1", caddy.Addr.Port(), 5*time.Second)
	checkAttempt(t, a)
	if !a.OK || len(a.Phases) != 3 || a.Phases[2].Attrs["status"] != 200 {
		t.Errorf("%s: failure %+v, phases %+v; want http3 status 200", held.name, a.Failure, a.Phases)
	}
	for _, pl := range placements[2:] {
		t.Run(pl.name, func(t *testing.T) {
			a := probeOnce(t, s.build(t, pl, remote), "127.0.0.1", caddy.Addr.Port(), 5*time.Second)
			checkAttempt(t, a)
			if a.Failure == nil || a.Failure.Class != sdk.ClassPluginError || !strings.Contains(a.Failure.Message, "process") {
				t.Errorf("failure %+v, want %s saying the connection cannot leave its process", a.Failure, sdk.ClassPluginError)
			}
		})
	}
}

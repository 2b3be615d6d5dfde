package pluginhost_test

import (
	"net"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/lab"
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

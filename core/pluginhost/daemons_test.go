package pluginhost_test

import (
	"testing"

	"github.com/probe-dev/probe/internal/lab/daemon"
)

// daemons are the servers from Debian's packages that the conformance
// suite probes with the protocol plugins.
type daemons struct {
	sshd *daemon.SSHD
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
	return &d
}

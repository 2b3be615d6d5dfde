package engine_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// TestProbeOneDeadline: Probe covers all it does with the target's timeout
// from the call. Under address_policy = "all" it dials the addresses one
// after another, and three that hang take the one timeout together, not
// one each (Run gives each address's attempt a deadline of its own).
func TestProbeOneDeadline(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")}
	scripts := map[netip.Addr]script{}
	for _, a := range addrs {
		scripts[a] = script{hang: true}
	}
	d := &scriptedDialer{scripts: scripts, conns: map[netip.AddrPort]*trackedConn{}}
	p := policyPipeline(engine.AddressAll, listResolver(addrs), d)
	const timeout = 100 * time.Millisecond
	for _, tt := range []struct {
		name string
		e    *engine.Engine
		t    *engine.Target
	}{
		{"run timeout", engine.New(engine.Options{Timeout: timeout}), &engine.Target{Name: "t", Host: "h", Port: 1, Pipeline: p}},
		{"target timeout", engine.New(engine.Options{}), &engine.Target{Name: "t", Host: "h", Port: 1, Pipeline: p, Timeout: timeout}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			a := tt.e.Probe(context.Background(), tt.t)
			took := time.Since(start)
			if a.Failure == nil || a.Failure.Class != sdk.ClassTCPTimeout || a.Address.Addr() != addrs[0] {
				t.Errorf("Probe = %v %+v, want the first address's tcp.timeout", a.Address, a.Failure)
			}
			if took < timeout || took > timeout+50*time.Millisecond {
				t.Errorf("Probe took %v for three hanging addresses, want the one %v timeout", took, timeout)
			}
		})
	}
}

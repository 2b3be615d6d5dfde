package dnssystem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probe-dev/probe/core/sdk"
)

// warmOnce runs warm once per process: New calls it, so a run's resolvers
// are configured, and the process warmed, before any attempt.
var warmOnce sync.Once

// warmUp is what New calls through warmOnce.
func warmUp() { _ = warm() }

// warmName is the name warm looks up: /etc/hosts answers it.
const warmName = "localhost"

// warm looks up localhost with both resolvers, Go's and then the C
// library's, without sending a query: Go's is given a dialer that refuses,
// and getaddrinfo(3) is asked only when Go's found localhost without
// dialing (in /etc/hosts, which nsswitch puts first), as it then will too.
// Its error is for the tests: a warm-up that fails only leaves the first
// lookup cold. The first lookup of a process pays for what is done once:
// getaddrinfo reads nsswitch.conf, host.conf and resolv.conf, Go's
// resolver nsswitch.conf and resolv.conf; and the first allocations and
// stack growth of every step. Here a fresh process's first getaddrinfo of
// localhost took 0.4-0.7 ms where the next ones took 15-20 µs.
func warm() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var dialed atomic.Bool
	r := &Resolver{network: "ip", preferGo: true, dial: func(context.Context, string, string) (net.Conn, error) {
		dialed.Store(true)
		return nil, errors.New("the warm-up sends no query")
	}}
	if err := warmLookup(ctx, r); err != nil {
		return err
	}
	if dialed.Load() {
		return fmt.Errorf("go's resolver asked a DNS server for %s: not looked up with getaddrinfo", warmName)
	}
	if platformResolver == "go" {
		return nil
	}
	r.preferGo = false
	return warmLookup(ctx, r)
}

// warmLookup resolves warmName with r and returns its failure as an error.
func warmLookup(ctx context.Context, r *Resolver) error {
	resp, err := r.Resolve(ctx, &sdk.ResolveRequest{Host: warmName})
	switch {
	case err != nil:
		return err
	case resp.Failure != nil:
		return fmt.Errorf("%s: %s", resp.Failure.Class, resp.Failure.Message)
	}
	return nil
}

package otel

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
)

// attempt is a failed attempt of four phases.
func attempt(seq int) *engine.Attempt {
	start := time.Now()
	phase := func(name string, at, d time.Duration, ok bool) engine.Phase {
		return engine.Phase{Name: name, Plugin: name, Start: at, Duration: d, OK: ok}
	}
	return &engine.Attempt{Target: "api", Seq: seq, Address: netip.MustParseAddrPort("127.0.0.1:443"),
		Started: start, Total: 4 * time.Millisecond,
		Phases: []engine.Phase{phase("resolve", 0, time.Millisecond, true), phase("connect", time.Millisecond, time.Millisecond, true),
			phase("tls", 2*time.Millisecond, 2*time.Millisecond, false)},
		Failure: &sdk.Failure{Phase: "tls", Class: "tls.cert_expired", Message: "expired"}}
}

// TestDeadCollector: a collector that accepts connections and never
// answers costs spans, not time: attempts are taken at once, the queue
// admits QueueSize spans, the others are counted as dropped for a full
// queue. (Those admitted are lost when their export gives up, after the
// SDK's retries: a minute.)
func TestDeadCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // read nothing, answer nothing
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	const size, attempts = 16, 100
	s, err := New(t.Context(), Options{Endpoint: "http://" + ln.Addr().String(), QueueSize: size})
	if err != nil {
		t.Fatal(err)
	}
	for i := range attempts {
		if err := s.Attempt(attempt(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	spans := uint64(attempts * 4)
	if exported, queueFull, failed := s.Counts(); exported != 0 || queueFull != spans-size || failed != 0 {
		t.Errorf("before any export ended: exported %d, queue_full %d, export_failed %d; want 0, %d, 0",
			exported, queueFull, failed, spans-size)
	}
}

// TestBadEndpoint: an endpoint that is not an http(s) URL or host:port, and
// an unknown protocol, are errors.
func TestBadEndpoint(t *testing.T) {
	for _, o := range []Options{{Endpoint: "ftp://collector:4318"}, {Endpoint: "http://"}, {Protocol: "thrift"}} {
		if _, err := New(t.Context(), o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

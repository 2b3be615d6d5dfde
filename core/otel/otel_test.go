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

// TestBadEndpoint: an endpoint that is not an http(s) URL or host:port, a
// URL of one signal's path rather than the collector's base, and an
// unknown protocol, are errors.
func TestBadEndpoint(t *testing.T) {
	for _, o := range []Options{{Endpoint: "ftp://collector:4318"}, {Endpoint: "http://"}, {Protocol: "thrift"},
		{Endpoint: "http://collector:4318/v1/traces"}, {Endpoint: "https://collector/otlp/v1/metrics/"}} {
		if _, err := New(t.Context(), o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// TestSignalURL: the endpoint is the collector's base, as
// OTEL_EXPORTER_OTLP_ENDPOINT is: each signal's path is added to it.
func TestSignalURL(t *testing.T) {
	for _, c := range [][3]string{
		{"http://c:4318", "v1/metrics", "http://c:4318/v1/metrics"},
		{"http://c:4318/", "v1/traces", "http://c:4318/v1/traces"},
		{"https://c/otlp", "v1/metrics", "https://c/otlp/v1/metrics"},
	} {
		if got := signalURL(c[0], c[1]); got != c[2] {
			t.Errorf("signalURL(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// TestSignalsOff: OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER none turn
// their signal off, otlp leaves it on, and anything else is an error.
func TestSignalsOff(t *testing.T) {
	for _, c := range []struct {
		traces, metrics        string
		wantTraces, wantMeters bool
		wantErr                bool
	}{
		{"", "", true, true, false},
		{"otlp", "none", true, false, false},
		{"none", "otlp", false, true, false},
		{"none", "none", false, false, false},
		{"console", "", false, false, true},
		{"", "prometheus", false, false, true},
	} {
		t.Setenv("OTEL_TRACES_EXPORTER", c.traces)
		t.Setenv("OTEL_METRICS_EXPORTER", c.metrics)
		s, err := New(t.Context(), Options{Endpoint: "127.0.0.1:1"})
		if c.wantErr {
			if err == nil {
				t.Errorf("traces %q metrics %q: no error", c.traces, c.metrics)
			}
			continue
		}
		if err != nil {
			t.Fatalf("traces %q metrics %q: %v", c.traces, c.metrics, err)
		}
		if (s.tracer != nil) != c.wantTraces || (s.meters != nil) != c.wantMeters {
			t.Errorf("traces %q metrics %q: traces on %v, metrics on %v; want %v, %v",
				c.traces, c.metrics, s.tracer != nil, s.meters != nil, c.wantTraces, c.wantMeters)
		}
		if err := s.Attempt(attempt(1)); err != nil {
			t.Error(err)
		}
	}
}

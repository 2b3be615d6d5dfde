package exporter

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a loopback listener that counts the connections made to it.
type recorder struct {
	addr  *net.TCPAddr
	conns atomic.Int64
}

func startRecorder(t *testing.T, network string) *recorder {
	t.Helper()
	ln, err := net.Listen(network, "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().(*net.TCPAddr)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

// TestAdhocAllowList checks that /probe probes an ad-hoc target only where
// the file's serve { adhoc { allow } } lets it, and a refused one is a 403
// with a one-line reason, counted, and never a connection.
func TestAdhocAllowList(t *testing.T) {
	listed, outside := startRecorder(t, "tcp4"), startRecorder(t, "tcp4")
	f := start(t, fmt.Sprintf(`
serve {
  adhoc { allow = ["127.0.0.1:%d", "*.internal:443"] }
}
target "own" {
  host     = "localhost"
  port     = TCP
  pipeline = pipeline.tcp
}
`, listed.addr.Port))
	refusals := []struct{ query, want string }{
		{fmt.Sprintf("target=127.0.0.1:%d&pipeline=tcp", outside.addr.Port),
			fmt.Sprintf(`target "127.0.0.1:%d" is not in the file's ad-hoc allow list (127.0.0.1:%d, *.internal:443)`,
				outside.addr.Port, listed.addr.Port)},
		// A name is refused unless a name pattern allows it: it is never
		// resolved to be checked.
		{fmt.Sprintf("target=localhost:%d&pipeline=tcp", listed.addr.Port), "is not in the file's ad-hoc allow list"},
		{"target=api.internal:80&pipeline=tcp", "is not in the file's ad-hoc allow list"},
	}
	for _, r := range refusals {
		status, body := f.get(t, "/probe?"+r.query, nil)
		if status != http.StatusForbidden || !strings.Contains(body, r.want) || strings.Count(body, "\n") != 1 {
			t.Errorf("GET /probe?%s: %d %q, want 403 and one line with %q", r.query, status, body, r.want)
		}
	}
	// Allowed: the listed port, and the file's own target asked for in the
	// ad-hoc form (host:port and pipeline), which needs no entry.
	for _, q := range []string{
		fmt.Sprintf("target=127.0.0.1:%d&pipeline=tcp", listed.addr.Port),
		fmt.Sprintf("target=localhost:%d&pipeline=tcp", f.tcp.Port()),
	} {
		if got := f.metrics(t, "/probe?"+q, nil); got["probe_success"]["{}"] != 1 {
			t.Errorf("GET /probe?%s: probe_success %v, want 1", q, got["probe_success"])
		}
	}
	time.Sleep(50 * time.Millisecond) // let the recorders count what came
	if n := outside.conns.Load(); n != 0 {
		t.Errorf("the refused target got %d connections, want none", n)
	}
	if n := listed.conns.Load(); n != 1 {
		t.Errorf("the allowed target got %d connections, want 1", n)
	}
	got := f.metrics(t, "/metrics", nil)
	if n := got["probe_exporter_adhoc_refused_total"][`{reason="not_allowed"}`]; n != float64(len(refusals)) {
		t.Errorf("probe_exporter_adhoc_refused_total = %v, want %d", got["probe_exporter_adhoc_refused_total"], len(refusals))
	}

	// A file without a serve block allows no ad-hoc target.
	f.set(`target "own" {
  host     = "127.0.0.1"
  port     = TCP
  pipeline = pipeline.tcp
}
serve {}
`)
	if err := f.exp.Reload(); err != nil {
		t.Fatal(err)
	}
	status, body := f.get(t, fmt.Sprintf("/probe?target=127.0.0.1:%d&pipeline=tcp", listed.addr.Port), nil)
	if want := "the file allows no ad-hoc target"; status != http.StatusForbidden || !strings.Contains(body, want) {
		t.Errorf("without an allow list: %d %q, want 403 with %q", status, body, want)
	}
	if n := listed.conns.Load(); n != 1 {
		t.Errorf("the target refused after the reload got %d connections, want still 1", n)
	}
}

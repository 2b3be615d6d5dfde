package exporter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probe-dev/probe/internal/leakcheck"
)

// TestProbeSlots: /probe runs at most MaxProbes probes at once. A scrape
// that finds them all busy waits for one while its attempt's whole deadline
// still fits in the scrape's time, and is otherwise answered 503 and
// counted: the exporter's limits never make a probe_success 0.
func TestProbeSlots(t *testing.T) {
	f := startWith(t, targets, Options{MaxProbes: 2})
	scrape := func(n int, h http.Header) (codes map[int]int, successes int, took time.Duration) {
		t.Helper()
		var mu sync.Mutex
		var wg sync.WaitGroup
		codes = map[int]int{}
		start := time.Now()
		for range n {
			wg.Go(func() {
				status, body, err := f.fetch(t.Context(), "/probe?target=slow", h)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case status == http.StatusOK && strings.Contains(body, "probe_success 1\n"):
					successes++
				case status == http.StatusOK:
					t.Errorf("a scrape failed:\n%s", body)
				case status == http.StatusServiceUnavailable && !strings.Contains(body, "probe is busy: its 2 probes at once are running"):
					t.Errorf("a 503 that does not say why: %q", body)
				}
				codes[status]++
			})
		}
		wg.Wait()
		return codes, successes, time.Since(start)
	}
	// Prometheus's 10 s leave 9.5 s, 4.5 of them to wait beside the file's
	// 5 s timeout: six scrapes of the 300 ms target run two at a time.
	codes, ok, took := scrape(6, http.Header{ScrapeTimeoutHeader: {"10"}})
	if ok != 6 || took < 900*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("6 scrapes with time to wait: %d succeeded (%v) in %v, want all, three rounds of 300ms", ok, codes, took)
	}
	// Without the header a scrape waits up to the attempt's timeout.
	if codes, ok, _ := scrape(6, nil); ok != 6 {
		t.Errorf("6 scrapes without a timeout header: %d succeeded (%v), want all", ok, codes)
	}
	// 0.4 s leave 0.36 s, all of it the attempt's: two are probed, and four
	// are shed at once rather than probed in less than their deadline.
	codes, ok, took = scrape(6, http.Header{ScrapeTimeoutHeader: {"0.4"}})
	if ok != 2 || codes[http.StatusServiceUnavailable] != 4 || took > 600*time.Millisecond {
		t.Errorf("6 scrapes with no time to wait: %d succeeded, answers %v in %v; want 2 probed and 4 shed at once", ok, codes, took)
	}
	got := f.metrics(t, "/metrics", nil)
	for name, want := range map[string]map[string]float64{
		"probe_exporter_scrapes_shed_total": {"{}": 4},
		"probe_exporter_probes_max":         {"{}": 2},
		"probe_exporter_probes_total":       {`{result="success",trigger="scrape"}`: 14},
	} {
		if fmt.Sprint(got[name]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// serveCapped serves f's exporter on a loopback port with opts, giving a
// new connection grace (newConnGrace when 0) to send a request before the
// server may close it at its cap, and returns its address.
func serveCapped(t *testing.T, f *fixture, opts ServerOptions, grace time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.exp.NewServer(opts)
	if grace > 0 {
		srv.conns.grace = grace
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// park connects to addr and, with a path, makes one request and reads its
// answer, leaving a keep-alive connection idle; without one it sends
// nothing.
func park(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if path == "" {
		return c
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: probe\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("park %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// held counts the connections to port that a process holds a descriptor
// of (those in the kernel's accept queue have none), as /proc/net/tcp lists
// them: local port, and an inode.
func held(t *testing.T, port string) int {
	t.Helper()
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(table), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) < 10 {
			continue
		}
		p, err := strconv.ParseUint(fields[1][strings.IndexByte(fields[1], ':')+1:], 16, 16)
		if err == nil && strconv.Itoa(int(p)) == port && fields[3] != "0A" && fields[9] != "0" { // 0A: listening
			n++
		}
	}
	return n
}

// TestParkedConnections: a client that parks connections, idle after a
// request or silent from the start, more than the server's cap, keeps no
// scrape out for long: at its cap the server closes those that serve no
// request (silent ones after their grace), the one waiting longest first,
// and holds no more connections than the cap.
func TestParkedConnections(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	f := start(t, targets)
	const maxConns, grace = 8, 100 * time.Millisecond
	addr := serveCapped(t, f, ServerOptions{MaxConns: maxConns}, grace)
	var idlers, silent []net.Conn
	for range 5 * maxConns {
		idlers = append(idlers, park(t, addr, "/"))
	}
	for range 2 * maxConns {
		silent = append(silent, park(t, addr, ""))
	}
	// The scrape queues behind the silent ones, which the server takes in
	// and closes a cap at a time, as each grace ends.
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/probe?target=api")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	t.Logf("the scrape took %v behind %d silent connections", took, len(silent))
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "probe_success 1\n") {
		t.Errorf("the scrape among parked connections: %d %v\n%s", resp.StatusCode, err, body)
	}
	if bound := time.Duration(len(silent)/(maxConns-1)+2) * grace; took > bound+200*time.Millisecond {
		t.Errorf("the scrape took %v behind %d silent connections, want at most %v", took, len(silent), bound)
	}
	got := f.metrics(t, "/metrics", nil)
	_, port, _ := net.SplitHostPort(addr)
	if n, fds := got["probe_exporter_connections"]["{}"], held(t, port); n > maxConns || fds > maxConns {
		t.Errorf("the server holds %v connections, descriptors of %d; want at most %d", n, fds, maxConns)
	}
	closed := 0
	for _, c := range append(idlers, silent...) {
		if closedWithin(c, 10*time.Millisecond) {
			closed++
		}
	}
	if want := len(idlers) + len(silent) - maxConns; closed < want {
		t.Errorf("the server closed %d parked connections, want at least %d", closed, want)
	}
	if n := got["probe_exporter_connections_closed_total"]["{}"]; n != float64(closed) {
		t.Errorf("probe_exporter_connections_closed_total %v, want the %d closed", n, closed)
	}
	if n := got["probe_exporter_connections_max"]["{}"]; n != maxConns {
		t.Errorf("probe_exporter_connections_max %v, want %d", n, maxConns)
	}
}

// TestIdleTimeout: below the cap nothing is closed to make room, and an
// idle keep-alive connection lasts its idle timeout, then goes.
func TestIdleTimeout(t *testing.T) {
	f := start(t, targets)
	const idle = 300 * time.Millisecond
	addr := serveCapped(t, f, ServerOptions{MaxConns: 8, IdleTimeout: idle}, 0)
	conns := []net.Conn{park(t, addr, "/"), park(t, addr, "/metrics"), park(t, addr, "/probe?target=api")}
	parked := time.Now()
	for i, c := range conns {
		if !closedWithin(c, idle+time.Second) {
			t.Fatalf("idle connection %d still open %v after its request, want closed after %v", i, time.Since(parked), idle)
		}
		if took := time.Since(parked); took < idle-50*time.Millisecond {
			t.Errorf("idle connection %d closed after %v, before the %v idle timeout", i, took, idle)
		}
	}
	if n := f.metrics(t, "/metrics", nil)["probe_exporter_connections_closed_total"]["{}"]; n != 0 {
		t.Errorf("%v connections closed to make room below the cap, want none", n)
	}
}

// TestSlowAnswer: the write timeout runs from when the answer is ready, so
// a probe longer than it is still answered.
func TestSlowAnswer(t *testing.T) {
	f := start(t, targets)
	addr := serveCapped(t, f, ServerOptions{WriteTimeout: 100 * time.Millisecond}, 0)
	resp, err := http.Get("http://" + addr + "/probe?target=slow")
	if err != nil {
		t.Fatalf("a 300ms probe under a 100ms write timeout: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(body), "probe_success 1\n") {
		t.Errorf("a 300ms probe under a 100ms write timeout: %v\n%s", err, body)
	}
}

// TestLifecycle: a Server answers POST /-/reload with 403 unless
// EnableLifecycle, and reloads with it.
func TestLifecycle(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		f := start(t, targets) // an exporter has one server
		addr := serveCapped(t, f, ServerOptions{EnableLifecycle: enabled}, 0)
		resp, err := http.Post("http://"+addr+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusForbidden
		if enabled {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("EnableLifecycle %v: POST /-/reload answered %d %q, want %d", enabled, resp.StatusCode, body, want)
		}
		got := f.metrics(t, "/metrics", nil)
		if n := got["probe_exporter_config_reloads_total"][`{result="success"}`]; (n == 1) != enabled {
			t.Errorf("EnableLifecycle %v: %v reloads", enabled, n)
		}
	}
}

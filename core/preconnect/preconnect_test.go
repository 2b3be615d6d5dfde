package preconnect_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/preconnect"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/internal/leakcheck"
	"github.com/probe-dev/probe/plugins/builtins"
)

// plugins are the built-ins a service links to use preconnect.
func plugins() config.Options {
	return config.Options{Plugins: builtins.Plugins()}
}

// pipelineFile writes, in dir, a pipeline that warms host:port through the
// lab.
func pipelineFile(dir string, l *lab.Lab, host string, port uint16, withTLS bool) (string, error) {
	hs := ""
	if withTLS {
		hs = "handshakes = [handshake.tls]"
	}
	src := fmt.Sprintf(`
run {
  attempts = 1
  timeout  = "2s"
}
resolver "lab" {
  plugin  = "dns-miekg"
  servers = [%q]
}
dialer "tcp" { plugin = "dial-tcp" }
handshake "tls" {
  plugin  = "tls"
  ca_file = %q
  alpn    = ["h2", "http/1.1"]
}
pipeline "p" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
  %s
}
target "t" {
  host     = %q
  port     = %d
  pipeline = pipeline.p
}
`, l.DNS.Addr, l.CAFile, hs, host, port)
	path := filepath.Join(dir, "preconnect.hcl")
	return path, os.WriteFile(path, []byte(src), 0o644)
}

func mustPipelineFile(t *testing.T, l *lab.Lab, host string, port uint16, withTLS bool) string {
	t.Helper()
	path, err := pipelineFile(t.TempDir(), l, host, port, withTLS)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	l, err := lab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q %v", url, resp.StatusCode, body, err)
	}
	return resp.Proto
}

// warmUp warms the lab's TLS server as api.probe.test with the plugins of
// cfg, offering h2, and waits for the warm-up to succeed. The pool is closed
// when the test ends.
func warmUp(t *testing.T, l *lab.Lab, cfg config.Options) (*preconnect.Pool, *engine.Result) {
	t.Helper()
	pool, err := preconnect.StartFile(context.Background(), mustPipelineFile(t, l, "api.probe.test", l.TLS.Addr.Port(), true), cfg,
		preconnect.Options{TLSConfig: &tls.Config{RootCAs: l.CA.Pool(), NextProtos: []string{"h2", "http/1.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	res, err := pool.Wait(context.Background())
	if err != nil || res.Summary.OK != 1 {
		t.Fatalf("warm-up: %+v %v", res.Summary, err)
	}
	return pool, res
}

func TestWarmConnectionServesFirstRequest(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	l := startLab(t)
	port := l.TLS.Addr.Port()
	pool, res := warmUp(t, l, plugins())
	if got := res.Targets[0].Phases; len(got) != 4 { // resolve connect tls total
		t.Errorf("phases = %v", got)
	}
	c := &http.Client{Transport: pool.Transport()}
	url := fmt.Sprintf("https://api.probe.test:%d/", port)
	if proto := get(t, c, url); proto != "HTTP/2.0" {
		t.Errorf("first request over %s, want HTTP/2.0 as the warm handshake negotiated", proto)
	}
	if hits, misses := pool.Stats(); hits != 1 || misses != 0 {
		t.Errorf("hits %d misses %d, want the warm connection used once", hits, misses)
	}
	// A second client has no warm connection left: it dials anew, to the
	// address the warm-up resolved (api.probe.test exists only in the lab's
	// DNS), within its TTL.
	c2 := &http.Client{Transport: pool.Transport()}
	get(t, c2, url)
	if hits, misses := pool.Stats(); hits != 1 || misses != 1 {
		t.Errorf("hits %d misses %d after a second client", hits, misses)
	}
}

// TestWarmConnectionKeepsAlive checks that a connection the pool keeps has
// TCP keep-alive on, as the service's own dial would give it, where a
// probe's connection has none.
func TestWarmConnectionKeepsAlive(t *testing.T) {
	l := startLab(t)
	pool, _ := warmUp(t, l, plugins())
	if hits, _ := pool.Stats(); hits != 0 {
		t.Fatalf("hits %d before any dial", hits)
	}
	c, err := pool.DialTLSContext(context.Background(), "tcp", fmt.Sprintf("api.probe.test:%d", l.TLS.Addr.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if hits, _ := pool.Stats(); hits != 1 {
		t.Fatalf("hits %d; want the warm connection", hits)
	}
	raw, err := c.(*tls.Conn).NetConn().(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var gerr error
	if err := raw.Control(func(fd uintptr) { on, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if on == 0 {
		t.Error("SO_KEEPALIVE is off on the warm connection; want it on")
	}
}

func TestStaleConnectionsAreNotHandedOut(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	l := startLab(t)
	t.Run("older than MaxIdle", func(t *testing.T) {
		pool, err := preconnect.StartFile(context.Background(), mustPipelineFile(t, l, "api.probe.test", l.TLS.Addr.Port(), true), plugins(),
			preconnect.Options{MaxIdle: time.Millisecond, TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := pool.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		get(t, &http.Client{Transport: pool.Transport()}, fmt.Sprintf("https://api.probe.test:%d/", l.TLS.Addr.Port()))
		if hits, misses := pool.Stats(); hits != 0 || misses != 1 {
			t.Errorf("hits %d misses %d, want the stale connection refused", hits, misses)
		}
	})
	t.Run("closed by the peer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close() // the server drops every connection at once
			}
		}()
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		pool, err := preconnect.StartFile(context.Background(), mustPipelineFile(t, l, "tcp.probe.test", port, false), plugins(), preconnect.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if res, err := pool.Wait(context.Background()); err != nil || res.Summary.OK != 1 {
			t.Fatalf("warm-up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the FIN arrives
		c, err := pool.DialContext(context.Background(), "tcp", fmt.Sprintf("tcp.probe.test:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if hits, misses := pool.Stats(); hits != 0 || misses != 1 {
			t.Errorf("hits %d misses %d, want the closed connection refused", hits, misses)
		}
	})
}

func TestStartReturnsAtOnce(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	l := startLab(t)
	// silent.probe.test never answers: the warm-up takes its whole timeout.
	path := mustPipelineFile(t, l, "silent.probe.test", l.TLS.Addr.Port(), true)
	start := time.Now()
	done := make(chan *engine.Result, 1)
	pool, err := preconnect.StartFile(context.Background(), path, plugins(), preconnect.Options{
		Engine: engine.Options{Timeout: 200 * time.Millisecond},
		OnDone: func(r *engine.Result) { done <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("StartFile took %v; it must not wait for the warm-up", took)
	}
	if pool.Result() != nil {
		t.Error("Result is set while the warm-up runs")
	}
	select {
	case r := <-done:
		if r.Summary.FailuresByClass[sdk.ClassDNSTimeout] != 1 || pool.Result() != r {
			t.Errorf("result = %+v", r.Summary)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDone was not called")
	}
}

// TestFileProblemsStillDial starts from a file that is missing, malformed,
// invalid or empty. StartFile says what is wrong with the file, naming it and
// the line, and the pool it returns warms nothing but serves the service's
// requests as a plain transport would, with the service's TLS config; its
// warm-up is over at once and OnDone is called. Before, a failed StartFile
// returned a nil pool and the first request through it panicked.
func TestFileProblemsStillDial(t *testing.T) {
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	l := startLab(t)
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missing := filepath.Join(dir, "missing.hcl")
	malformed := write("malformed.hcl", "run {\n  attempts = 1\n}\ntarget \"x\" {\n  host = \"a\"\n")
	invalid := write("invalid.hcl", "target \"x\" {\n  host     = \"a\"\n  port     = 443\n  pipeline = pipeline.none\n}\n")
	empty := write("empty.hcl", "")
	for _, tc := range []struct {
		name, path, err string
	}{
		{"missing", missing, "preconnect: load " + missing + ": open " + missing + ": no such file or directory"},
		{"malformed", malformed, "preconnect: " + malformed + ":4: Unclosed configuration block: There is no closing brace for this block before the end of the file. " +
			"This may be caused by incorrect brace nesting elsewhere in this file"},
		{"invalid", invalid, "preconnect: " + invalid + ":4: Reference to undeclared pipeline: There is no pipeline block named \"none\" in this file"},
		{"empty", empty, ""},
		{"endless", "/dev/zero", "preconnect: load /dev/zero: larger than 8 MiB, the most probe reads for a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan *engine.Result, 1)
			pool, err := preconnect.StartFile(context.Background(), tc.path, plugins(), preconnect.Options{
				TLSConfig: &tls.Config{RootCAs: l.CA.Pool()},
				OnDone:    func(r *engine.Result) { done <- r },
			})
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("StartFile: %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Errorf("StartFile error:\n%v\nwant it to start with\n%s", err, tc.err)
			}
			if tc.name == "missing" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v is not fs.ErrNotExist", err)
			}
			if pool == nil {
				t.Fatal("StartFile returned a nil pool")
			}
			defer pool.Close()
			select {
			case r := <-done:
				if r.Summary.Targets != 0 || pool.Result() != r {
					t.Errorf("warm-up result %+v, want no targets", r.Summary)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("OnDone was not called")
			}
			tr := pool.Transport()
			defer tr.CloseIdleConnections()
			if proto := get(t, &http.Client{Transport: tr}, fmt.Sprintf("https://127.0.0.1:%d/", l.TLS.Addr.Port())); proto != "HTTP/2.0" {
				t.Errorf("request over %s, want HTTP/2.0 as a plain transport negotiates", proto)
			}
			if hits, misses := pool.Stats(); hits != 0 || misses != 1 {
				t.Errorf("hits %d misses %d, want the one request dialed anew", hits, misses)
			}
		})
	}
}

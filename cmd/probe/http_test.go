package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTestHTTP probes plain HTTP servers with `probe test HOST PORT http`:
// resolve, connect, then the request, with its status checked.
func TestTestHTTP(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, "hello\n")
	})
	ok := httptest.NewServer(mux)
	t.Cleanup(ok.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	port := func(s *httptest.Server) string { return s.URL[strings.LastIndex(s.URL, ":")+1:] }

	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, "test", "127.0.0.1", port(ok), "http", "-o", "json")
		wantExit(t, r, exitOK)
		doc := decodeDoc(t, r.stdout)
		a := doc.Targets[0].Attempts[0]
		checkAttempt(t, a, pipelinePhases["implied http"])
		checkAttrs(t, a.Phases[2], map[string]any{"status": 200.0, "version": "HTTP/1.1", "body_bytes": 6.0,
			"url": "http://127.0.0.1:" + port(ok) + "/"})
		if ttfb := a.Phases[2].Attrs["ttfb_ms"].(float64); ttfb < 30 || ttfb > 30+30 {
			t.Errorf("ttfb_ms = %v, want the server's 30ms", ttfb)
		}
	})
	t.Run("status", func(t *testing.T) {
		t.Parallel()
		r := probe(t, nil, "test", "127.0.0.1", port(down), "http")
		wantExit(t, r, exitFailed)
		if want := "failed in http: http.status: http GET http://127.0.0.1:" + port(down) + "/: status 503, want 200-399"; !strings.Contains(r.stdout, want) {
			t.Errorf("waterfall lacks %q:\n%s", want, r.stdout)
		}
	})
}

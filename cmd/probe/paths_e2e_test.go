package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sdk"
)

// pathsFile is the example of for_each on handshakes and pipelines.
const pathsFile = "../../examples/paths.hcl"

// pathServer is an HTTPS server on 127.0.0.1 with a certificate from the
// lab's CA. It answers every request with its request URI as the body, but
// 404 for a path under /gone, and counts the requests each URI got.
type pathServer struct {
	port string
	mu   sync.Mutex
	hits map[string]int
}

func startPathServer(t *testing.T) *pathServer {
	t.Helper()
	cert, err := testLab.CA.Issue([]string{"api.probe.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &pathServer{hits: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.URL.RequestURI()
		s.mu.Lock()
		s.hits[uri]++
		s.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/gone") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, uri)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.port = srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	return s
}

// takeHits returns the requests counted so far and starts counting anew.
func (s *pathServer) takeHits() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hits
	s.hits = map[string]int{}
	return h
}

// TestPathsExample runs examples/paths.hcl, as written, against a lab
// HTTPS server: twenty targets from one list, each with a pipeline and an
// http handshake of its own, so each requests its own path. Then with a
// list of the test's own, where one path answers 404: that target alone
// fails, in http, with http.status.
func TestPathsExample(t *testing.T) {
	srv := startPathServer(t)
	vars := []string{"--var", "site=127.0.0.1", "--var", "port=" + srv.port, "--var", "ca_file=" + testLab.CAFile}

	t.Run("validate", func(t *testing.T) {
		r := probe(t, nil, "validate", pathsFile)
		wantExit(t, r, exitOK)
		if want := "is valid: 20 pipelines, 20 targets."; !strings.Contains(r.stdout, want) {
			t.Errorf("validate says %q, want %q", r.stdout, want)
		}
	})

	t.Run("twenty paths", func(t *testing.T) {
		r := probe(t, nil, append(append([]string{"run", pathsFile}, vars...), "-o", "json", "--attempts", "2")...)
		wantExit(t, r, exitOK)
		doc := decodeDoc(t, r.stdout)
		hits := srv.takeHits()
		if len(doc.Targets) != 20 {
			t.Fatalf("%d targets, want 20", len(doc.Targets))
		}
		want := map[string]int{}
		for _, tg := range doc.Targets {
			path := checkPathTarget(t, tg, srv.port)
			want[path] = 2
			for _, a := range tg.Attempts {
				if p := findPhase(a, "http"); p != nil {
					checkAttrs(t, *p, map[string]any{"status": 200.0, "version": "HTTP/2.0", "body_bytes": float64(len(path))})
				}
			}
		}
		// The server saw each target's path, twice (two attempts), and no other.
		if diff := cmp.Diff(want, hits); diff != "" {
			t.Errorf("requests the server got (-want +got):\n%s", diff)
		}
	})

	t.Run("one path gone", func(t *testing.T) {
		r := probe(t, nil, append(append([]string{"run", pathsFile}, vars...), "-o", "json",
			"--var", `paths=["/", "/gone/page", "/healthz?full=1"]`)...)
		wantExit(t, r, exitFailed)
		doc := decodeDoc(t, r.stdout)
		hits := srv.takeHits()
		var got []string
		for _, tg := range doc.Targets {
			path := checkPathTarget(t, tg, srv.port)
			a := tg.Attempts[0]
			status := findPhase(a, "http").Attrs["status"]
			class := sdk.Class("")
			if a.Failure != nil {
				class = a.Failure.Class
			}
			got = append(got, fmt.Sprintf("%s ok=%v status=%v %s", path, tg.OK, status, class))
		}
		want := []string{"/ ok=true status=200 ", "/gone/page ok=false status=404 http.status", "/healthz?full=1 ok=true status=200 "}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("targets (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int{"/": 1, "/gone/page": 1, "/healthz?full=1": 1}, hits); diff != "" {
			t.Errorf("requests the server got (-want +got):\n%s", diff)
		}
		if f := doc.Targets[1].Attempts[0].Failure; f == nil || f.Phase != "http" || !strings.Contains(f.Message, "status 404") {
			t.Errorf("failure of page[/gone/page] = %+v, want one in http saying status 404", f)
		}
	})
}

// checkPathTarget checks what holds for every target of examples/paths.hcl:
// it is named page[PATH] after its path, probed with the pipeline of the
// same name, through tls and http, and every attempt's http phase requested
// that path. It returns PATH.
func checkPathTarget(t *testing.T, tg report.TargetJSON, port string) string {
	t.Helper()
	path, ok := strings.CutPrefix(tg.Name, "page[")
	path, ok2 := strings.CutSuffix(path, "]")
	if !ok || !ok2 {
		t.Errorf("target %q, want page[PATH]", tg.Name)
		return tg.Name
	}
	if tg.Pipeline != tg.Name || tg.Host != "127.0.0.1" || strconv.Itoa(int(tg.Port)) != port {
		t.Errorf("target %s: pipeline %q, %s:%d; want pipeline %q, 127.0.0.1:%s", tg.Name, tg.Pipeline, tg.Host, tg.Port, tg.Name, port)
	}
	for _, a := range tg.Attempts {
		checkAttempt(t, a, pipelinePhases["implied https"])
		p := findPhase(a, "http")
		if p == nil {
			t.Errorf("target %s attempt %d: no http phase", tg.Name, a.Seq)
			continue
		}
		checkAttrs(t, *p, map[string]any{"url": "https://127.0.0.1:" + port + path})
	}
	return path
}

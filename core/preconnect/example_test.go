package preconnect_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/preconnect"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// A service starts the warm-up at start-up and goes on; its HTTP client
// takes the warm connections as they become ready. The pipeline file names
// the hosts to warm and how: here a DNS server, TCP and TLS.
func ExampleStartFile() {
	l, err := lab.Start() // stands for the DNS server and the host a real service calls
	if err != nil {
		panic(err)
	}
	defer l.Close()
	pipeline := fmt.Sprintf(`
resolver "dns" {
  plugin  = "dns-miekg"
  servers = [%q]
}
dialer "tcp" { plugin = "dial-tcp" }
handshake "tls" {
  plugin  = "tls"
  ca_file = %q
  alpn    = ["h2", "http/1.1"]
}
pipeline "api" {
  resolvers  = [resolver.dns]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}
target "api" {
  host     = "api.probe.test"
  port     = %d
  pipeline = pipeline.api
}
`, l.DNS.Addr, l.CAFile, l.TLS.Addr.Port())
	path := filepath.Join(l.Dir, "preconnect.hcl")
	if err := os.WriteFile(path, []byte(pipeline), 0o644); err != nil {
		panic(err)
	}

	pool, err := preconnect.StartFile(context.Background(), path, config.Options{Plugins: builtins.Plugins()},
		preconnect.Options{TLSConfig: &tls.Config{RootCAs: l.CA.Pool()}})
	if err != nil {
		fmt.Println("no warm-up:", err)
		return
	}
	defer pool.Close()
	client := &http.Client{Transport: pool.Transport()}

	// ... the service starts serving here; later, its first request:
	<-pool.Done()
	resp, err := client.Get(fmt.Sprintf("https://api.probe.test:%d/", l.TLS.Addr.Port()))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	hits, _ := pool.Stats()
	fmt.Println(resp.Status, "warm connections used:", hits)
	// Output: 200 OK warm connections used: 1
}

// TestDocSnippetIsExample checks that the Go snippet of docs/preconnect.md
// is doc_example_test.go after its package clause, whitespace aside: the
// snippet compiles and runs as Example, and the two cannot drift apart.
func TestDocSnippetIsExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/preconnect.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) != 1 {
		t.Fatalf("docs/preconnect.md has %d go blocks, want the one that is Example", len(blocks))
	}
	src, err := os.ReadFile("doc_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(src), "package preconnect_test\n")
	if !ok {
		t.Fatal("doc_example_test.go has no package clause")
	}
	normal := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if got, want := normal(string(blocks[0][1])), normal(example); got != want {
		t.Errorf("docs/preconnect.md's snippet differs from doc_example_test.go:\n%s\nwant:\n%s", blocks[0][1], example)
	}
}

package preconnect_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/probe-dev/probe/core/preconnect"
	"github.com/probe-dev/probe/internal/lab"
)

// A service starts the warm-up at start-up and goes on; its HTTP client
// takes the warm connections as they become ready.
func ExampleStartFile() {
	l, _ := lab.Start() // stands for the services a real program calls
	defer l.Close()
	path, _ := pipelineFile(l.Dir, l, "api.probe.test", l.TLS.Addr.Port(), true)

	pool, err := preconnect.StartFile(context.Background(), path, plugins(), preconnect.Options{
		TLSConfig: &tls.Config{RootCAs: l.CA.Pool()},
	})
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

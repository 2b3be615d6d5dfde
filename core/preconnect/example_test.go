package preconnect_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

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

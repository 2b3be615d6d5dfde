// This file is the snippet of docs/preconnect.md, word for word after the
// package clause; TestDocSnippetIsExample keeps the two identical.

package preconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/preconnect"
	"github.com/probe-dev/probe/plugins/builtins"
)

// A service starts warming the hosts its preconnect.hcl names and serves at
// once. Here there is no preconnect.hcl: the service loses the warm-up, not
// a request.
func Example() {
	// upstream stands for a host the service calls.
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer upstream.Close()
	log := hclog.New(&hclog.LoggerOptions{Name: "service", Output: os.Stdout, DisableTime: true})
	plugins := config.Options{Plugins: builtins.Plugins()}

	// Returns at once; the warm-up runs in the background.
	pool, err := preconnect.StartFile(context.Background(), "preconnect.hcl", plugins, preconnect.Options{Logger: log})
	if err != nil {
		log.Error("no warm-up", "error", err) // the pool warms nothing; its transport dials as usual
	}
	defer pool.Close()
	client := &http.Client{Transport: pool.Transport()}

	// ... serve. A request to a warmed host takes a warm connection.
	resp, err := client.Get(upstream.URL)
	if err != nil {
		log.Error("request failed", "error", err)
		return
	}
	resp.Body.Close()
	warm, dialed := pool.Stats()
	fmt.Println(resp.Status, "warm:", warm, "dialed:", dialed)
	// Output:
	// [ERROR] service: no warm-up: error="preconnect: load preconnect.hcl: open preconnect.hcl: no such file or directory"
	// 200 OK warm: 0 dialed: 1
}

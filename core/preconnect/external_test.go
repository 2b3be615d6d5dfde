package preconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/leakcheck"
	"github.com/zclconf/go-cty/cty"
)

// TestWarmConnectionFromExternalDialer warms a connection with the dialer in
// a plugin process (`probe serve-builtin-plugins`) and the resolver and tls
// in process: the socket the plugin process connected is handed into this
// process (core/fdpass), handshaken here, kept, and serves the first request.
func TestWarmConnectionFromExternalDialer(t *testing.T) {
	probeBin := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-o", probeBin, "../../cmd/probe")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	host, err := pluginhost.New(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the plugin process and its goroutines are
	// gone before the leak checks run.
	t.Cleanup(func() {
		if err := host.Close(); err != nil {
			t.Errorf("close the plugin host: %v", err)
		}
	})
	loaded, err := host.Load(pluginhost.Binary{Name: "builtin", Path: probeBin, Args: []string{"serve-builtin-plugins"}})
	if err != nil {
		t.Fatal(err)
	}
	var dialer *sdk.Plugin
	for _, p := range loaded {
		if p.Info.Name == "dial-tcp" {
			dialer = p
		}
	}
	if dialer == nil {
		t.Fatalf("%s serve-builtin-plugins serves no dial-tcp", probeBin)
	}
	if pids := host.Pids(); len(pids) != 1 {
		t.Fatalf("plugin processes %v, want one", pids)
	}
	// dns-miekg and tls stay in process; the remote dial-tcp counts its
	// dials.
	counted := &countingDialer{}
	remote := *dialer
	remote.NewDialer = func(cfg cty.Value) (sdk.Dialer, error) {
		d, err := dialer.NewDialer(cfg)
		if err != nil {
			return nil, err
		}
		counted.Dialer = d
		return counted, nil
	}
	cfg := plugins()
	cfg.Plugins["dial-tcp"] = &remote

	l := startLab(t)
	port := l.TLS.Addr.Port()
	pool, _ := warmUp(t, l, cfg)
	if n := counted.dials.Load(); n != 1 {
		t.Fatalf("the plugin process dialed %d times, want once", n)
	}
	tr := pool.Transport()
	defer tr.CloseIdleConnections()
	if proto := get(t, &http.Client{Transport: tr}, fmt.Sprintf("https://api.probe.test:%d/", port)); proto != "HTTP/2.0" {
		t.Errorf("first request over %s, want HTTP/2.0 as the warm handshake negotiated", proto)
	}
	if hits, misses := pool.Stats(); hits != 1 || misses != 0 {
		t.Errorf("hits %d misses %d, want the connection the plugin process dialed used once", hits, misses)
	}
}

// countingDialer counts the dials of the dialer it wraps.
type countingDialer struct {
	sdk.Dialer
	dials atomic.Int32
}

func (d *countingDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	d.dials.Add(1)
	return d.Dialer.Dial(ctx, req)
}

// Close releases the wrapped dialer's instance in the plugin process.
func (d *countingDialer) Close() error {
	if c, ok := d.Dialer.(sdk.Closer); ok {
		return c.Close()
	}
	return nil
}

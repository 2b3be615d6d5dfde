package pluginhost_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// sequencePipeline loads the test binary path, which serves the handshake
// plugin name beside the resolver "static" and dial-tcp (testdata/testplugin),
// and returns a pipeline of the three, all in that process: the engine runs
// each attempt as one request on a Sequences stream.
func sequencePipeline(t *testing.T, h *pluginhost.Host, path, name string) *engine.Pipeline {
	t.Helper()
	served := load(t, h, pluginhost.Binary{Name: name, Path: path})
	r, err := served["static"].NewResolver(cty.EmptyObjectVal)
	if err != nil {
		t.Fatal(err)
	}
	dp := served["dial-tcp"]
	d, err := dp.NewDialer(comp{}.config(t, dp, sdk.KindDialer))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := served[name].NewHandshaker(cty.EmptyObjectVal)
	if err != nil {
		t.Fatal(err)
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Pipeline{
		Name:       name,
		Resolvers:  []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "dial-tcp", Component: d},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: name, Plugin: name, Component: hs}},
	}
}

// goroutine is the plugin goroutine that ran a's handshake.
func goroutine(t *testing.T, a engine.Attempt) int {
	t.Helper()
	g, ok := a.Phases[2].Attrs["goroutine"].(int)
	if !ok || g <= 0 {
		t.Fatalf("handshake attrs %v: no goroutine", a.Phases[2].Attrs)
	}
	return g
}

// TestSequenceStreams checks that attempts reuse their streams: one after
// another they run on one stream, so on one goroutine of the plugin's; four
// at once run on at most four.
func TestSequenceStreams(t *testing.T) {
	h := newHost(t)
	p := sequencePipeline(t, h, crashBin, "crash")
	port := testLab.TCP.Addr.Port()
	pid := onePid(t, h)
	seen := map[int]int{}
	for range 10 {
		a := probeOnce(t, p, "ok.test", port, 2*time.Second)
		wantOK(t, a, pid)
		seen[goroutine(t, a)]++
	}
	if len(seen) != 1 {
		t.Errorf("10 attempts one after another ran on the plugin's goroutines %v, want one stream's", seen)
	}

	targets := make([]*engine.Target, 4)
	for i := range targets {
		targets[i] = &engine.Target{Name: fmt.Sprint("t", i), Host: "ok.test", Port: port, Pipeline: p}
	}
	res := engine.New(engine.Options{Timeout: 2 * time.Second, Attempts: 10, Concurrency: 4}).Run(t.Context(), targets)
	for _, tr := range res.Targets {
		if len(tr.Attempts) != 10 {
			t.Fatalf("target %s: %d attempts, want 10", tr.Target.Name, len(tr.Attempts))
		}
		for _, a := range tr.Attempts {
			wantOK(t, a, pid)
			seen[goroutine(t, a)]++
		}
	}
	if len(seen) > 4 {
		t.Errorf("50 attempts, at most four at once, ran on the plugin's goroutines %v, want at most four streams'", seen)
	}
}

// TestSequenceCanceled: Ctrl-C during a request ends the attempt at once as
// canceled. The process keeps running, and the next attempt runs on a new
// stream: the canceled one is dropped, not reused behind its stuck request.
func TestSequenceCanceled(t *testing.T) {
	h := newHost(t)
	p := sequencePipeline(t, h, hangBin, "hang")
	port := testLab.TCP.Addr.Port()
	pid := onePid(t, h)
	first := probeOnce(t, p, "ok.test", port, 2*time.Second)
	wantOK(t, first, pid)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	a := engine.New(engine.Options{Timeout: 5 * time.Second}).Probe(ctx, &engine.Target{Name: "hang", Host: "hang.test", Port: port, Pipeline: p})
	elapsed := time.Since(start)
	if a.Failure == nil || a.Failure.Class != sdk.ClassCanceled {
		t.Fatalf("failure %+v, want %s", a.Failure, sdk.ClassCanceled)
	}
	if elapsed > time.Second {
		t.Errorf("the canceled attempt ended after %v, want soon after the cancel at 100 ms", elapsed)
	}

	next := probeOnce(t, p, "ok.test", port, 2*time.Second)
	wantOK(t, next, pid)
	if goroutine(t, next) == goroutine(t, first) {
		t.Errorf("the attempt after the canceled one ran on the canceled stream's goroutine %d", goroutine(t, first))
	}
}

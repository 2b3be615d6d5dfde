package pluginhost_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// errPipeline loads errBin and returns a pipeline whose handshake is its
// "error", and whose resolver and dialer are its own where remote says so,
// else the test's static resolver and dial-tcp in process. With both of its
// own, the engine runs each attempt as one Sequences request.
func errPipeline(t *testing.T, h *pluginhost.Host, remote map[sdk.Kind]bool) *engine.Pipeline {
	t.Helper()
	served := load(t, h, pluginhost.Binary{Name: "error", Path: errBin})
	var r sdk.Resolver = staticResolver{}
	if remote[sdk.KindResolver] {
		var err error
		if r, err = served["static"].NewResolver(cty.EmptyObjectVal); err != nil {
			t.Fatal(err)
		}
	}
	dp := builtins.Plugins()["dial-tcp"]
	if remote[sdk.KindDialer] {
		dp = served["dial-tcp"]
	}
	d, err := dp.NewDialer(comp{}.config(t, dp, sdk.KindDialer))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := served["error"].NewHandshaker(cty.EmptyObjectVal)
	if err != nil {
		t.Fatal(err)
	}
	route, err := engine.NewRoute(engine.Stage[sdk.Resolver]{Name: "static", Plugin: "static", Component: r}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Pipeline{
		Name:       "error",
		Resolvers:  []engine.Route{route},
		Dialer:     engine.Stage[sdk.Dialer]{Name: "tcp", Plugin: "dial-tcp", Component: d},
		Handshakes: []engine.Stage[sdk.Handshaker]{{Name: "error", Plugin: "error", Component: hs}},
	}
}

// TestPluginErrors checks that a Go error a plugin's component returns is
// a plugin.error failure of the phase it ran in, with the plugin's message,
// for resolvers, dialers, handshakes and whole attempts in one request.
func TestPluginErrors(t *testing.T) {
	all := map[sdk.Kind]bool{sdk.KindResolver: true, sdk.KindDialer: true}
	tests := []struct {
		name   string
		remote map[sdk.Kind]bool
		host   string
		phase  string
		own    string
	}{
		{"resolver", map[sdk.Kind]bool{sdk.KindResolver: true}, "resolve-error.test", sdk.PhaseResolve, "the resolver's own error"},
		{"dialer", map[sdk.Kind]bool{sdk.KindDialer: true}, "dial-error.test", sdk.PhaseConnect, "the dialer's own error"},
		{"handshake", nil, "error.test", "error", "the handshake's own error"},
		{"whole attempt, resolver", all, "resolve-error.test", sdk.PhaseResolve, "the resolver's own error"},
		{"whole attempt, dialer", all, "dial-error.test", sdk.PhaseConnect, "the dialer's own error"},
		{"whole attempt, handshake", all, "error.test", "error", "the handshake's own error"},
	}
	h := newHost(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := errPipeline(t, h, tt.remote)
			port := testLab.TCP.Addr.Port()
			a := probeOnce(t, p, tt.host, port, 2*time.Second)
			checkAttempt(t, a)
			if a.Failure == nil || a.Failure.Class != sdk.ClassPluginError || a.Failure.Phase != tt.phase {
				t.Fatalf("failure %+v, want %s in phase %s", a.Failure, sdk.ClassPluginError, tt.phase)
			}
			if !strings.Contains(a.Failure.Message, tt.own) {
				t.Errorf("failure message %q does not carry the plugin's %q", a.Failure.Message, tt.own)
			}
			// The plugin is healthy: the same pipeline works for another host.
			if a := probeOnce(t, p, "ok.test", port, 2*time.Second); !a.OK {
				t.Errorf("attempt after the error failed: %+v", a.Failure)
			}
		})
	}
}

// TestConstructorMistake: a constructor that reads an attribute its schema
// lacks panics (sdk.String); in a plugin process the panic fails that
// configuration alone, loudly, and the process serves on.
func TestConstructorMistake(t *testing.T) {
	served := load(t, newHost(t), pluginhost.Binary{Name: "errplugin", Path: errBin})
	p := served["misread"]
	if p == nil {
		t.Fatal("errplugin serves no misread")
	}
	_, err := p.NewHandshaker(comp{}.config(t, p, sdk.KindHandshake))
	want := `panic: sdk.String(cfg, "nmae"): the configuration has no attribute "nmae"; its schema has name`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("configure: %v, want an error containing %q", err, want)
	}
	if _, err := served["error"].NewHandshaker(cty.EmptyObjectVal); err != nil {
		t.Errorf("configure another plugin of the process afterwards: %v", err)
	}
}

// TestCrashFailsOnlyInFlight SIGKILLs the plugin in the middle of a run of
// 200 attempts, 4 at a time: only the attempts in flight then fail; the
// ones that start while it restarts wait for it.
func TestCrashFailsOnlyInFlight(t *testing.T) {
	h := newHost(t)
	p := misbehaving(t, h, crashBin, "crash")
	const n, concurrency, killAfter = 200, 4, 20
	targets := make([]*engine.Target, n)
	for i := range targets {
		targets[i] = &engine.Target{Name: fmt.Sprint("t", i), Host: "ok.test", Port: testLab.TCP.Addr.Port(), Pipeline: p}
	}
	eng := engine.New(engine.Options{Mode: engine.Parallel, Concurrency: concurrency, Timeout: 2 * time.Second})
	var (
		mu     sync.Mutex
		done   int
		killed int
	)
	eng.OnAttempt(func(engine.Attempt) {
		mu.Lock()
		defer mu.Unlock()
		if done++; done == killAfter {
			killed = onePid(t, h)
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		}
	})
	res := eng.Run(t.Context(), targets)
	var failed []string
	for _, tr := range res.Targets {
		for _, a := range tr.Attempts {
			if !a.OK {
				if a.Failure.Class != sdk.ClassPluginCrashed {
					t.Errorf("%s: failure %+v, want %s", tr.Target.Name, a.Failure, sdk.ClassPluginCrashed)
				}
				failed = append(failed, a.Failure.Message)
			}
		}
	}
	if len(failed) > concurrency {
		t.Errorf("%d of %d attempts failed after one crash, want at most the %d in flight; the first: %q",
			len(failed), n, concurrency, failed[:concurrency+1])
	}
	if now := onePid(t, h); now == killed {
		t.Errorf("plugin process %d was killed, yet it is still the plugin's", killed)
	}
}

// TestFrozen stops a plugin process (SIGSTOP): the attempt in flight fails
// as hung after its deadline and the grace, the process is killed without
// being asked to exit (it could not answer), and the next attempt runs in a
// new process; a host closed while its plugin is stopped closes at once.
func TestFrozen(t *testing.T) {
	t.Run("mid-run", func(t *testing.T) {
		h := newHost(t)
		p := misbehaving(t, h, hangBin, "hang")
		port := testLab.TCP.Addr.Port()
		pid := onePid(t, h)
		wantOK(t, probeOnce(t, p, "ok.test", port, 2*time.Second), pid)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		a := probeOnce(t, p, "ok.test", port, 300*time.Millisecond)
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("the attempt to a stopped plugin ended after %v, want its 300 ms timeout plus the hang grace", elapsed)
		}
		wantCrashed(t, a, "hang")
		if d := recovers(t, h, p, pid); d > time.Second {
			t.Errorf("the plugin came back after %v, want within 1 s", d)
		}
		waitGone(t, pid)
	})
	t.Run("closed while stopped", func(t *testing.T) {
		h, err := pluginhost.New(hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		p := misbehaving(t, h, hangBin, "hang")
		pid := onePid(t, h)
		wantOK(t, probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 2*time.Second), pid)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- h.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close still waits on the stopped plugin after 10 s")
		}
		// It asks the plugin to exit, waits the grace, then kills it.
		if elapsed := time.Since(start); elapsed > 4*time.Second {
			t.Errorf("Close took %v, want the 2 s grace and a kill", elapsed)
		}
		waitGone(t, pid)
	})
}

// TestHelperEnded checks that a plugin's own child process neither holds
// Close up (it shares the plugin's stdout and stderr, which go-plugin reads
// to their end) nor outlives it.
func TestHelperEnded(t *testing.T) {
	h, err := pluginhost.New(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	p := misbehaving(t, h, spawnBin, "spawn")
	a := probeOnce(t, p, "ok.test", testLab.TCP.Addr.Port(), 2*time.Second)
	if !a.OK {
		t.Fatalf("attempt failed: %+v", a.Failure)
	}
	helper, ok := a.Phases[2].Attrs["helper"].(int)
	if !ok || helper <= 0 {
		t.Fatalf("handshake attrs %v: no helper pid", a.Phases[2].Attrs)
	}
	pid := onePid(t, h)
	start := time.Now()
	if err := h.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Close took %v with the plugin's helper running, want well under its 2 s grace", elapsed)
	}
	waitGone(t, pid)
	waitGone(t, helper)
}

// waitGone waits up to 3 s for the process pid to be gone (or a zombie
// that its new parent has yet to reap).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("process %d to end", pid), func() string {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return "gone"
		}
		// The state follows the command's closing parenthesis.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
			return "gone"
		}
		return "running"
	}, "gone")
}

// TestSilentSocket checks that a plugin whose handshake line names a socket
// that accepts and never answers fails to load within the connection's
// bound (5 s), with the reason, not after gRPC's default 20 s: `probe
// validate` waited that long.
func TestSilentSocket(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/silent.sock"
	ln, err := net.Listen("unix", sock) // accepted by the kernel, never read
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bin := dir + "/probe-plugin-silent"
	script := "#!/bin/sh\necho '1|1|unix|" + sock + "|grpc|'\nexec sleep 60\n"
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	start := time.Now()
	_, err = h.Load(pluginhost.Binary{Name: "silent", Path: bin})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "plugin silent: "+bin) || !strings.Contains(err.Error(), "server preface") {
		t.Errorf("Load: %v, want the plugin named and the missing server preface", err)
	}
	if took > 10*time.Second {
		t.Errorf("Load took %v, want the 5 s connection bound", took)
	}
}

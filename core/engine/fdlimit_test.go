package engine_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// starvedDialer fails its first starve dials with local.fd_limit, as a
// dialer does when socket() returns EMFILE, then connects.
type starvedDialer struct {
	starve int32
	calls  atomic.Int32
}

func (d *starvedDialer) Dial(ctx context.Context, req *sdk.DialRequest) (*sdk.DialResponse, error) {
	if d.calls.Add(1) <= d.starve {
		span := sdk.StartSpan(sdk.PhaseConnect, time.Time{})
		return &sdk.DialResponse{Phases: []sdk.Phase{span.End(false, nil)}, Failure: &sdk.Failure{Phase: sdk.PhaseConnect,
			Class: sdk.ClassFDLimit, Message: "dial tcp " + req.Address.String() + ": socket: too many open files"}}, nil
	}
	return netDialer{}.Dial(ctx, req)
}

// TestFDLimitRetried checks that an attempt that found no file descriptor
// runs again, and is reported as local.fd_limit only when it never finds
// one within its timeout.
func TestFDLimitRetried(t *testing.T) {
	addr := startTCP(t)
	leakcheck.Goroutines(t)
	leakcheck.FDs(t)
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name     string
		starve   int32
		ok       bool
		min, max time.Duration // of the whole Probe
	}{
		{"starved three times", 3, true, 5 * time.Millisecond, timeout},
		{"starved for good", 1 << 30, false, timeout, timeout + 100*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &starvedDialer{starve: tt.starve}
			p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1")})
			p.Dialer.Component = d
			tg := &engine.Target{Name: "t", Host: "h", Port: addr.Port(), Pipeline: p, Timeout: timeout}
			start := time.Now()
			res := engine.New(engine.Options{}).Run(context.Background(), []*engine.Target{tg})
			took := time.Since(start)
			tr := res.Targets[0]
			if len(tr.Attempts) != 1 {
				t.Fatalf("%d attempts, want the last try only", len(tr.Attempts))
			}
			a := tr.Attempts[0]
			if a.OK != tt.ok || (!tt.ok && a.Failure.Class != sdk.ClassFDLimit) {
				t.Fatalf("ok %v, failure %+v; want ok %v (else local.fd_limit)", a.OK, a.Failure, tt.ok)
			}
			if tt.ok && d.calls.Load() != tt.starve+1 {
				t.Errorf("%d dials, want %d", d.calls.Load(), tt.starve+1)
			}
			if a.Seq != 1 || a.Total > timeout {
				t.Errorf("seq %d, total %v; want the last try's own", a.Seq, a.Total)
			}
			if took < tt.min || took > tt.max {
				t.Errorf("Run took %v, want [%v, %v]", took, tt.min, tt.max)
			}
		})
	}
}

// TestConcurrencyFitsFDLimit lowers this process's descriptor limit so that
// three attempts fit: ten targets asking for a concurrency of 64 run three
// at a time, and the engine says so at debug level.
func TestConcurrencyFitsFDLimit(t *testing.T) {
	addr := startTCP(t)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// 64 kept free by the engine, 4 per attempt, and 2 to spare for what
	// opens meanwhile (the engine counts while ReadDir holds one).
	lowered := unix.Rlimit{Cur: uint64(len(entries) + 64 + 3*4 + 2), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})

	const delay = 40 * time.Millisecond
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: delay})
	var log bytes.Buffer
	opts := engine.Options{Concurrency: 64, Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Debug})}
	start := time.Now()
	res := engine.New(opts).Run(context.Background(), targets(10, addr, p))
	took := time.Since(start)
	if res.Summary.OK != 10 {
		t.Fatalf("ok = %d, want 10: %+v", res.Summary.OK, res.Summary)
	}
	// Three at a time: four waves of 40 ms; all at once would be one.
	if took < 4*delay {
		t.Errorf("10 targets of %v took %v, want four waves (%v)", delay, took, 4*delay)
	}
	if !strings.Contains(log.String(), "concurrency capped by the file descriptor limit") || !strings.Contains(log.String(), "capped=3") {
		t.Errorf("log does not say concurrency was capped to 3:\n%s", &log)
	}
}

package engine

import (
	"context"
	"os"
	"time"

	"github.com/probe-dev/probe/core/sdk"
	"golang.org/x/sys/unix"
)

// A run that opens more sockets than the process may hold fails with EMFILE,
// which says nothing of its targets. Run therefore bounds its concurrency by
// the descriptors left under RLIMIT_NOFILE, and an attempt that still finds
// none (sdk.ClassFDLimit: other processes, plugins, a guess too low) runs
// again once others have released theirs.
const (
	// fdsPerAttempt is the most descriptors one attempt is counted to hold
	// at once: its connection, a DNS query per record type (A and AAAA run
	// at once), and one more for a TCP fallback, a Happy Eyeballs race or
	// the duplicate of a socket received from a plugin.
	fdsPerAttempt = 4
	// fdReserve is left for everything else: the runtime, the standard
	// streams, plugin processes' channels and logs, an exporter's listener.
	fdReserve = 64
	// The wait before running a starved attempt again doubles from
	// fdRetryMin to fdRetryMax.
	fdRetryMin = 5 * time.Millisecond
	fdRetryMax = 200 * time.Millisecond
)

// fdConcurrency returns how many attempts may run at once within the soft
// RLIMIT_NOFILE (which the Go runtime raises to the hard limit at start),
// given the descriptors open now; ok is false when there is no limit.
func fdConcurrency() (n int, limit uint64, open int, ok bool) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 0, 0, 0, false
	}
	open = openFDs()
	return fdBudget(lim.Cur, open), lim.Cur, open, true
}

// FDConcurrency returns how many attempts may run at once within the soft
// RLIMIT_NOFILE, given the descriptors open now, as Run bounds its
// concurrency: a few descriptors each, some kept for everything else; ok is
// false when there is no limit. A server that runs attempts for its clients
// (core/exporter) sizes its own bounds with it.
func FDConcurrency() (n int, ok bool) {
	n, _, _, ok = fdConcurrency()
	return n, ok
}

// fdBudget returns how many attempts fit in limit descriptors of which open
// are taken, leaving fdReserve free; at least one.
func fdBudget(limit uint64, open int) int {
	free := int64(min(limit, 1<<40)) - int64(open) - fdReserve
	return int(max(1, free/fdsPerAttempt))
}

// openFDs counts the process's open descriptors, 0 where it cannot.
func openFDs() int {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if entries, err := os.ReadDir(dir); err == nil {
			return len(entries)
		}
	}
	return 0
}

// roundRetryingOnFDLimit runs round, the attempts of t numbered seq, and
// while one of them fails as local.fd_limit (no file descriptor left), runs
// the round again, waiting a little longer each time for other attempts to
// release theirs; only the last try is kept. It gives up, leaving the
// local.fd_limit failure, once t's timeout has passed since the first try or
// ctx ends. Every round of Probe and Run goes through it.
func (e *Engine) roundRetryingOnFDLimit(ctx context.Context, t *Target, seq int, out []Attempt) []Attempt {
	n := len(out)
	giveUp := time.Now().Add(e.timeout(t))
	wait := fdRetryMin
	for {
		out = e.round(ctx, t, seq, out[:n])
		left := time.Until(giveUp)
		if !starved(out[n:]) || ctx.Err() != nil || left <= 0 {
			return out
		}
		e.opts.Logger.Debug("out of file descriptors; running the attempt again", "target", e.redactor.Redact(t.Name), "seq", seq, "wait", wait)
		pause := time.NewTimer(min(wait, left))
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			return out
		}
		wait = min(2*wait, fdRetryMax)
	}
}

// starved reports whether an attempt of a round found no file descriptor.
func starved(round []Attempt) bool {
	for i := range round {
		if f := round[i].Failure; f != nil && f.Class == sdk.ClassFDLimit {
			return true
		}
	}
	return false
}

// Package leakcheck fails a test that leaves goroutines or file descriptors
// behind: Goroutines and FDs take a snapshot when called and, when the test
// ends, wait for everything started or opened since to go away.
//
// Call them after the shared set-up a test relies on (servers that live for
// the whole package) and before anything the test starts; cleanups
// registered later run first, so what they close is closed by the time the
// check runs. A test that checks for leaks must not run in parallel with
// others (t.Parallel), whose goroutines and descriptors it would count.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wait is how long the check waits for goroutines to end and descriptors to
// close: connections close and goroutines return asynchronously.
var wait = 5 * time.Second

// ignored are goroutines that live as long as the process once started, by
// a function in their stack.
var ignored = []string{
	"os/signal.signal_recv", // signal.Notify's reader, started once
	"os/signal.loop",
}

// Goroutines fails t when it ends if goroutines started after the call are
// still running 5 s later. The failure lists their stacks.
func Goroutines(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		t.Helper()
		var extra []string
		poll(func() bool {
			extra = extra[:0]
			for id, stack := range goroutines() {
				if _, old := before[id]; !old {
					extra = append(extra, stack)
				}
			}
			return len(extra) == 0
		})
		if len(extra) > 0 {
			slices.Sort(extra)
			t.Errorf("%d goroutines left behind:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}

// FDs fails t when it ends if file descriptors opened after the call (or
// reused for something else) are still open 5 s later. The failure lists
// them with what they point to ("socket:[1234]", a path).
func FDs(t testing.TB) {
	t.Helper()
	before, err := fds()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Helper()
		var extra []string
		poll(func() bool {
			now, err := fds()
			if err != nil {
				t.Error(err)
				return true
			}
			extra = extra[:0]
			for fd, target := range now {
				if before[fd] != target {
					extra = append(extra, fmt.Sprintf("fd %d: %s", fd, target))
				}
			}
			return len(extra) == 0
		})
		if len(extra) > 0 {
			slices.Sort(extra)
			t.Errorf("%d file descriptors left open: %s", len(extra), strings.Join(extra, ", "))
		}
	})
}

// poll calls done until it returns true or wait has passed.
func poll(done func() bool) {
	for deadline := time.Now().Add(wait); !done() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines returns the stacks of the running goroutines by id, but for the
// caller's and those in ignored.
func goroutines() map[uint64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[uint64]string{}
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 { // the caller, always listed first
			continue
		}
		stack := string(g)
		head, _, _ := strings.Cut(strings.TrimPrefix(stack, "goroutine "), " ")
		id, err := strconv.ParseUint(head, 10, 64)
		if err != nil || slices.ContainsFunc(ignored, func(fn string) bool { return strings.Contains(stack, "\n"+fn+"(") }) {
			continue
		}
		out[id] = stack
	}
	return out
}

// fds returns the process's open descriptors and what each points to.
func fds() (map[int]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list open file descriptors: %w", err)
	}
	out := make(map[int]string, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// The descriptor ReadDir itself had open is gone by now.
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			out[fd] = target
		}
	}
	return out, nil
}

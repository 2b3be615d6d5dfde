package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWatch runs probe watch in a tmux pane on the status page's file (a
// target behind the lab's 40 ms TLS server, one with an expired
// certificate): the rows appear, the delayed target's TLS column reads the
// lab's delay, enter shows its waterfall, and q ends probe watch with the
// screen as it was before.
func TestWatch(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed (apt-get install tmux; .ci/deps installs it)")
	}
	file := statusFile(t)
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	shell := "cd " + filepath.Dir(file) + " && echo BEFORE-WATCH && " + probeBin + " watch --every 200ms " + filepath.Base(file) + "; echo WATCH-EXIT=$?; sleep 60"
	tmux("new-session", "-d", "-x", "160", "-y", "40", "sh", "-c", shell)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	capture := func() string { return tmux("capture-pane", "-p") }
	// On any failure, the pane as it is then (cleanups run last first: this
	// one before the server's end).
	t.Cleanup(func() {
		if t.Failed() {
			out, err := exec.Command("tmux", "-S", sock, "capture-pane", "-p").CombinedOutput()
			t.Logf("the pane at the end (capture: %v):\n%s", err, out)
		}
	})
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			screen := capture()
			if ok(screen) {
				return screen
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 20s; the screen:\n%s", what, screen)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The rows, once a few rounds have run.
	rows := waitFor("rows of both targets", func(s string) bool {
		m := regexp.MustCompile(`round (\d+)`).FindStringSubmatch(s)
		n, _ := strconv.Atoi(func() string {
			if m == nil {
				return "0"
			}
			return m[1]
		}())
		return n >= 5 && strings.Contains(s, "broken") && strings.Contains(s, "slow")
	})
	var header, slow, broken []string
	for _, line := range strings.Split(rows, "\n") {
		f := strings.Fields(strings.TrimPrefix(line, ">"))
		switch {
		case len(f) > 0 && f[0] == "TARGET":
			header = f
		case len(f) > 0 && f[0] == "slow":
			slow = f
		case len(f) > 0 && f[0] == "broken":
			broken = f
		}
	}
	tlsCol := -1
	for i, h := range header {
		if h == "TLS" {
			tlsCol = i
		}
	}
	if tlsCol < 0 || len(slow) <= tlsCol || slow[1] != "ok" {
		t.Fatalf("no TLS column of an ok slow; the screen:\n%s", rows)
	}
	// The lab's delay is a floor; above it, the machine's load adds what it
	// will (other tests run beside this one), so one attempt is held only
	// below the file's timeout, and the median of the history (below)
	// below 2.5 times the delay: a unit or a column read wrong is off by
	// far more.
	ms, err := strconv.ParseFloat(strings.TrimSuffix(slow[tlsCol], "ms"), 64)
	if err != nil || ms < 40 || ms >= 1000 {
		t.Errorf("slow's latest TLS reads %q, want the lab's 40 ms delay or more, below the 1s timeout; the screen:\n%s", slow[tlsCol], rows)
	}
	if len(broken) < 2 || broken[1] != "failing" || broken[len(broken)-1] != "tls.cert_expired" || broken[len(broken)-2] != "100%" ||
		!strings.Contains(broken[len(broken)-3], "×××××") {
		t.Errorf("broken's row = %v, want failing, failures in its sparkline, 100%% loss, tls.cert_expired; the screen:\n%s", broken, rows)
	}
	t.Logf("the screen:\n%s", rows)
	// Enter on the first row (slow): its waterfall and phase history.
	tmux("send-keys", "Enter")
	detail := waitFor("the waterfall of slow", func(s string) bool {
		return strings.Contains(s, "latest attempt:") && strings.Contains(s, "history (last 60 attempts, median)")
	})
	t.Logf("after enter:\n%s", detail)
	median := regexp.MustCompile(`(?m)^\s+tls\s+\S+\s+([\d.]+)ms\s*$`).FindStringSubmatch(detail[strings.Index(detail, "history ("):])
	if median == nil {
		t.Errorf("no TLS median in slow's history; the screen:\n%s", detail)
	} else if v, _ := strconv.ParseFloat(median[1], 64); v < 40 || v > 100 {
		t.Errorf("slow's TLS median reads %s ms, want the lab's 40 ms delay (40-100); the screen:\n%s", median[1], detail)
	}
	// Esc, and the list once it is back; then q. (Sent at once, esc and q
	// may reach probe watch in one read, which is alt+q: TestWatchKeysReadAtOnce
	// covers that.)
	tmux("send-keys", "Escape")
	waitFor("the list after esc", func(s string) bool {
		return strings.Contains(s, "TARGET") && !strings.Contains(s, "latest attempt:")
	})
	tmux("send-keys", "q")
	after := waitFor("the end of probe watch", func(s string) bool { return strings.Contains(s, "WATCH-EXIT=") })
	if !strings.Contains(after, "WATCH-EXIT=0") || !strings.Contains(after, "BEFORE-WATCH") || strings.Contains(after, "TARGET") {
		t.Errorf("after q, the screen is not restored or probe watch failed:\n%s", after)
	}
}

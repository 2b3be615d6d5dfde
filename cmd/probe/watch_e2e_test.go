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
	ms, err := strconv.ParseFloat(strings.TrimSuffix(slow[tlsCol], "ms"), 64)
	if err != nil || ms < 40 || ms > 80 {
		t.Errorf("slow's latest TLS reads %q, want the lab's 40 ms delay; the screen:\n%s", slow[tlsCol], rows)
	}
	if len(broken) < 2 || broken[1] != "failing" || broken[len(broken)-1] != "tls.cert_expired" || broken[len(broken)-2] != "100%" ||
		!strings.Contains(broken[len(broken)-3], "×××××") {
		t.Errorf("broken's row = %v, want failing, failures in its sparkline, 100%% loss, tls.cert_expired", broken)
	}
	t.Logf("the screen:\n%s", rows)
	// Enter on the first row (slow): its waterfall and phase history.
	tmux("send-keys", "Enter")
	detail := waitFor("the waterfall of slow", func(s string) bool {
		return strings.Contains(s, "latest attempt:") && strings.Contains(s, "history (last 60 attempts, median)")
	})
	t.Logf("after enter:\n%s", detail)
	tmux("send-keys", "Escape")
	tmux("send-keys", "q")
	after := waitFor("the end of probe watch", func(s string) bool { return strings.Contains(s, "WATCH-EXIT=") })
	if !strings.Contains(after, "WATCH-EXIT=0") || !strings.Contains(after, "BEFORE-WATCH") || strings.Contains(after, "TARGET") {
		t.Errorf("after q, the screen is not restored or probe watch failed:\n%s", after)
	}
}

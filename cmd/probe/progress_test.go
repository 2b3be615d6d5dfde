package main

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, planned int64
		elapsed       time.Duration
		want          string
	}{
		{0, 40, 1500 * time.Millisecond, "[░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░] 0/40 attempts    0%  1.50s"},
		{10, 40, 2 * time.Second, "[███████░░░░░░░░░░░░░░░░░░░░░░░] 10/40 attempts   25%  2.00s, about 6.00s left"},
		{40, 40, 3 * time.Second, "[██████████████████████████████] 40/40 attempts  100%  3.00s"},
		{45, 40, 3 * time.Second, "[██████████████████████████████] 45/45 attempts  100%  3.00s"},
	}
	for _, tt := range tests {
		if got := progressLine(tt.done, tt.planned, tt.elapsed); got != tt.want {
			t.Errorf("progressLine(%d, %d, %v) =\n%q, want\n%q", tt.done, tt.planned, tt.elapsed, got, tt.want)
		}
	}
}

// counter is a progressSource that counts up.
type counter struct{ done atomic.Int64 }

func (c *counter) Progress() (int64, int64) { return c.done.Load(), 10 }

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStartProgress(t *testing.T) {
	t.Run("short run draws nothing", func(t *testing.T) {
		var out syncBuffer
		stop := startProgress(&out, &counter{}, time.Second, 10*time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		stop()
		if out.String() != "" {
			t.Errorf("a run shorter than the delay drew %q", out.String())
		}
	})
	t.Run("long run", func(t *testing.T) {
		var out syncBuffer
		c := &counter{}
		stop := startProgress(&out, c, 20*time.Millisecond, 10*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		c.done.Store(5)
		time.Sleep(50 * time.Millisecond)
		stop()
		got := out.String()
		for _, want := range []string{"\r[░", " 0/10 attempts", "\r[███████████████░", " 5/10 attempts   50%"} {
			if !strings.Contains(got, want) {
				t.Errorf("progress output lacks %q:\n%q", want, got)
			}
		}
		if !strings.HasSuffix(got, "\r\x1b[K") {
			t.Errorf("progress output does not end by erasing the bar: %q", got)
		}
	})
}

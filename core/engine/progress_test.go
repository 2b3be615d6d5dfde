package engine_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// TestProgress watches a run's progress from another goroutine: it only
// grows, and ends at the planned rounds, target overrides included.
func TestProgress(t *testing.T) {
	addr := startTCP(t)
	p := pipeline(t, &delayResolver{addr: netip.MustParseAddr("127.0.0.1"), delay: 10 * time.Millisecond})
	ts := targets(3, addr, p)
	ts[2].Attempts = 4
	eng := engine.New(engine.Options{Attempts: 2, Concurrency: 2})
	stop := make(chan struct{})
	seen := make(chan [2]int64)
	go func() {
		var last [2]int64
		for {
			select {
			case <-stop:
				seen <- last
				return
			default:
			}
			done, planned := eng.Progress()
			if done < last[0] || (planned != 0 && planned != 8) {
				t.Errorf("progress went from %v to %d/%d", last, done, planned)
			}
			last = [2]int64{done, planned}
			time.Sleep(time.Millisecond)
		}
	}()
	eng.Run(context.Background(), ts)
	close(stop)
	<-seen
	if done, planned := eng.Progress(); done != 8 || planned != 8 {
		t.Errorf("Progress() = %d/%d after the run, want 8/8", done, planned)
	}
}

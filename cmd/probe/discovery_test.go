package main

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/probe-dev/probe/core/config"
)

// TestWatchDiscovery checks when probe serve loads its file again: on a
// change of a file_sd list, and on the schedule for a file that called
// dns_srv, never otherwise.
func TestWatchDiscovery(t *testing.T) {
	old := discoveryPoll
	discoveryPoll = 20 * time.Millisecond
	t.Cleanup(func() { discoveryPoll = old })
	list := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(list, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		file  *config.File
		touch bool
		want  func(n int64) bool
	}{
		{"nothing read", &config.File{}, false, func(n int64) bool { return n == 0 }},
		{"list unchanged", &config.File{Discovery: config.Discovery{Files: []string{list}}}, false, func(n int64) bool { return n == 0 }},
		{"list changed", &config.File{Discovery: config.Discovery{Files: []string{list}}}, true, func(n int64) bool { return n == 1 }},
		// 500ms at 100ms a round: about five loads; some slack for a busy machine.
		{"dns on the schedule", &config.File{Discovery: config.Discovery{DNS: true}, Schedule: config.Schedule{Every: 100 * time.Millisecond}}, false,
			func(n int64) bool { return n >= 3 && n <= 6 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w discovered
			w.set(tt.file)
			// A list written after the load, before the watcher first looks
			// (a busy machine schedules it late), is a change all the same.
			if tt.touch {
				if err := os.WriteFile(list, []byte(`[{"targets": ["a:1"]}]`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var loads atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				watchDiscovery(ctx, &w, func() error { loads.Add(1); return nil }, hclog.NewNullLogger())
			}()
			time.Sleep(500 * time.Millisecond)
			cancel()
			<-done
			if n := loads.Load(); !tt.want(n) {
				t.Errorf("%d loads", n)
			}
		})
	}
}

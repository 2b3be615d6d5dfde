package main

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/probe-dev/probe/core/config"
)

// discoveryPoll is how often probe serve looks at the file_sd lists the
// file read; a variable for the tests.
var discoveryPoll = time.Second

// discoveryDNSEvery is how often probe serve asks DNS again (loads the
// file again) for a file that called dns_srv and has no schedule block.
const discoveryDNSEvery = time.Minute

// discovered is what the file probe serve last loaded read from outside
// it, and the state of its file_sd lists when it was loaded. The load
// function sets it; watchDiscovery reads it.
type discovered struct {
	mu    sync.Mutex
	d     config.Discovery
	every time.Duration        // the file's schedule, 0 without one
	seen  map[string]fileStamp // each list's state when the file was loaded
}

// set records f as the file loaded, its lists' state now as the baseline a
// change is told against: a list written while the file loads, before any
// watcher looks, still counts as a change.
func (w *discovered) set(f *config.File) {
	seen := make(map[string]fileStamp, len(f.Discovery.Files))
	for _, p := range f.Discovery.Files {
		seen[p] = stamp(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d, w.every, w.seen = f.Discovery, f.Schedule.Every, seen
}

// changed returns a list whose state is not its baseline, taking its state
// now as the new one, or "" when none changed.
func (w *discovered) changed() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.d.Files {
		if s := stamp(p); s != w.seen[p] {
			w.seen[p] = s
			return p
		}
	}
	return ""
}

// dns says whether the file called dns_srv, and its schedule.
func (w *discovered) dns() (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.DNS, w.every
}

// fileStamp is what tells a file's change: its size and modification time,
// or that it is missing.
type fileStamp struct {
	size    int64
	mod     time.Time
	missing bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{missing: true}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime()}
}

// watchDiscovery loads the file again (reload) when a file_sd list it read
// changes, and, when it called dns_srv, on its schedule (every minute
// without one), until ctx ends. A load that fails keeps the last good file:
// the exporter logs why and says so in /metrics.
func watchDiscovery(ctx context.Context, w *discovered, reload func() error, log hclog.Logger) {
	lastDNS := time.Now()
	tick := time.NewTicker(discoveryPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var why string
		if p := w.changed(); p != "" {
			why = "file_sd list " + p + " changed"
		}
		dns, every := w.dns()
		if every == 0 {
			every = discoveryDNSEvery
		}
		if why == "" && dns && time.Since(lastDNS) >= every {
			why = "dns_srv refresh"
		}
		if why == "" {
			continue
		}
		lastDNS = time.Now()
		log.Info("loading the file again", "why", why)
		_ = reload() // the exporter logs the outcome
	}
}

package main

import (
	"context"
	"os"
	"slices"
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
// it. The load function sets it; watchDiscovery reads it.
type discovered struct {
	mu    sync.Mutex
	d     config.Discovery
	every time.Duration // the file's schedule, 0 without one
}

func (w *discovered) set(f *config.File) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d, w.every = f.Discovery, f.Schedule.Every
}

func (w *discovered) get() (config.Discovery, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return config.Discovery{Files: slices.Clone(w.d.Files), DNS: w.d.DNS}, w.every
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
	seen := map[string]fileStamp{}
	var lastDNS time.Time
	tick := time.NewTicker(discoveryPoll)
	defer tick.Stop()
	for {
		d, every := w.get()
		for _, p := range d.Files { // the lists of the file loaded: their state now is the baseline
			if _, ok := seen[p]; !ok {
				seen[p] = stamp(p)
			}
		}
		if lastDNS.IsZero() {
			lastDNS = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var why string
		for _, p := range d.Files {
			if s := stamp(p); s != seen[p] {
				seen[p] = s
				why = "file_sd list " + p + " changed"
			}
		}
		if every == 0 {
			every = discoveryDNSEvery
		}
		if why == "" && d.DNS && time.Since(lastDNS) >= every {
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

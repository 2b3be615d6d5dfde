package history

import (
	"runtime"
	"strconv"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// BytesPerTarget measures the heap a History holds per target once full:
// targets probed every apart over retain, each attempt of four phases
// (resolve, connect, tls, http), one in ten failing. `make bench` reports it.
func BytesPerTarget(targets int, every, retain time.Duration) float64 {
	names := make([]string, targets)
	for i := range names {
		names[i] = "target-" + strconv.Itoa(i)
	}
	a := &engine.Attempt{Phases: []engine.Phase{{Name: "resolve"}, {Name: "connect"}, {Name: "tls"}, {Name: "http"}}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := New(retain, every)
	h.Retain(names)
	start := time.Now().Add(-retain)
	for t := start; t.Before(start.Add(retain)); t = t.Add(every) {
		for i, name := range names {
			a.Target, a.Started, a.OK = name, t, (i+int(t.Unix()))%10 != 0
			a.Total = time.Duration(i) * time.Microsecond
			_ = h.Attempt(a)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(targets)
}

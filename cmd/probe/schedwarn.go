package main

import (
	"math"
	"runtime"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/engine"
)

// warnDistorted logs a warning when the process waited to be scheduled for
// long enough to distort res's timings (engine.SchedLatency.Distorted),
// with what to do about it: fewer targets at once when the run had several,
// a quieter machine when it probed one at a time already.
func warnDistorted(log hclog.Logger, res *engine.Result, opts engine.Options, targets int) {
	s := res.SchedLatency
	if !s.Distorted {
		return
	}
	concurrency := min(opts.Concurrency, targets)
	advice := "lower --concurrency, or probe from a less busy machine"
	if concurrency <= 1 {
		advice = "the machine is busy: probe from a less busy one"
	}
	log.Warn("timings distorted: probe's goroutines waited to be scheduled for a large share of the attempts' time, "+
		"which the phases include; "+advice,
		"wait_share", math.Round(s.WaitShare*1e3)/1e3, "sched_p99", s.P99, "sched_max", s.Max,
		"concurrency", concurrency, "gomaxprocs", runtime.GOMAXPROCS(0))
}

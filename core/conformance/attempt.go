package conformance

import (
	"fmt"
	"time"

	"github.com/probe-dev/probe/core/engine"
)

// AttemptProblems returns what breaks the rules every attempt keeps, one
// sentence each, none for a sound attempt: phases in order and not
// overlapping, none negative, every phase but a failed last one ok, the
// last ending within the total, the durations plus the overhead making the
// total, and a failure exactly when the attempt is not ok. The conformance
// suite holds every attempt to them, in process and out.
func AttemptProblems(a engine.Attempt) []string {
	var out []string
	var sum, end time.Duration
	for i, p := range a.Phases {
		if p.Start < end || p.Duration < 0 {
			out = append(out, fmt.Sprintf("phase %s starts at %v, lasts %v; the previous ended at %v", p.Name, p.Start, p.Duration, end))
		}
		if last := i == len(a.Phases)-1; p.OK != (!last || a.OK) {
			out = append(out, fmt.Sprintf("phase %s ok %v, want %v", p.Name, p.OK, !last || a.OK))
		}
		sum += p.Duration
		end = p.Start + p.Duration
	}
	if end > a.Total || sum+a.Overhead != a.Total {
		out = append(out, fmt.Sprintf("phases %v + overhead %v != total %v (last phase ends at %v)", sum, a.Overhead, a.Total, end))
	}
	if a.OK != (a.Failure == nil) {
		out = append(out, fmt.Sprintf("ok %v with failure %+v", a.OK, a.Failure))
	}
	return out
}

package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Schedule probes targets, every apart, until ctx ends, and returns once
// the attempts in flight have ended (canceled, and not recorded); with no
// targets, or every not positive, it only waits for ctx. A round
// starts every interval and spreads its targets evenly over it: target i
// of n is due i×every/n into the round, so that each target is probed
// every apart and the load is even.
//
// Unlike Run, a round does not wait for the one before it to finish: a
// target that times out delays no other target. A target whose attempts of
// the round before are still running when it is due again (its timeout, or
// its attempts, take longer than every) is not probed in that round, so
// that its attempts never overlap; round is called as each round has
// started all its targets, with how many it skipped. A round whose targets
// start late (every worker was busy) starts the next from when it is done
// rather than catching up all at once.
//
// Attempts stream to OnAttempt, and targets' results to OnTarget (i is the
// target's place in targets), as Run streams them; Schedule keeps nothing
// of either, and aggregates nothing more when OnTarget is not set. At most
// Options.Concurrency targets are probed at once; a worker is started only
// when every one started is busy, and each probes target after target.
func (e *Engine) Schedule(ctx context.Context, targets []*Target, every time.Duration, round func(skipped int)) {
	if every <= 0 || len(targets) == 0 {
		<-ctx.Done()
		return
	}
	type job struct {
		i int
		t *Target
	}
	var (
		jobs    = make(chan job)
		busy    = make([]atomic.Bool, len(targets)) // busy[i]: target i is being probed
		wg      sync.WaitGroup
		workers int
		limit   = e.workers()
	)
	worker := func() {
		for j := range jobs {
			tr := e.runTarget(ctx, j.i, j.t, nil)
			if e.onTarget != nil {
				e.onTarget(j.i, tr)
			}
			busy[j.i].Store(false)
		}
	}
	pace := time.NewTimer(time.Hour) // reset before each wait
	defer pace.Stop()
	wait := func(until time.Time) bool {
		pace.Reset(time.Until(until))
		select {
		case <-pace.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
feed:
	for due := time.Now(); ; {
		skipped := 0
		for i, t := range targets {
			if !wait(due.Add(every * time.Duration(i) / time.Duration(len(targets)))) {
				break feed
			}
			if !busy[i].CompareAndSwap(false, true) {
				skipped++
				continue
			}
			select {
			case jobs <- job{i, t}:
				continue // a worker was waiting
			default:
			}
			if workers < limit {
				workers++
				wg.Go(worker)
			}
			select {
			case jobs <- job{i, t}:
			case <-ctx.Done():
				break feed
			}
		}
		if round != nil {
			round(skipped)
		}
		if due = due.Add(every); due.Before(time.Now()) {
			due = time.Now()
		}
	}
	close(jobs)
	wg.Wait()
}

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
// of either, and aggregates nothing more when OnTarget is not set. A worker
// is started only when every one started is busy, and each probes target
// after target. How many targets are probed at once is bounded by
// Options.Concurrency when it was set, by the file descriptors left, and
// otherwise by nothing but the targets: a schedule's load is its targets
// spread over every, not a batch to pace, and a bound would hold every
// target back while some hang until their timeouts.
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
		limit   = e.workers(e.scheduleConcurrency(len(targets)))
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

// scheduleConcurrency returns how many of n targets a schedule probes at
// once at most: Options.Concurrency when the caller set it, all n
// otherwise. Run's default of a few per processor paces a batch so that
// handshakes do not wait for each other's computation; a schedule's
// targets come due one by one, so that as many run at once as take longer
// than the gap between them, and they are many only while targets hang
// (until their timeout) or the machine is too slow for the schedule. A
// bound then holds back every target due, those that would answer at once
// too: 10,000 TLS targets every 10 s on two cores started 1 % of their
// attempts 140-500 ms late under Run's 16, 20 ms late unbounded
// (docs/performance.md).
func (e *Engine) scheduleConcurrency(n int) int {
	if e.concurrencySet {
		return min(n, e.opts.Concurrency)
	}
	return n
}

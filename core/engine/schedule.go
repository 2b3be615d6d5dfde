package engine

import (
	"context"
	"runtime"
	"runtime/metrics"
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
// Options.Concurrency when it was set; otherwise a target due waits for a
// worker only when Run's default concurrency is busy and the processors are
// too (scheduleConcurrency). The file descriptors left bound both.
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
		// Up to floor workers start as needed, past it up to limit only
		// while the processors keep up (cpu.free).
		floor, limit = e.scheduleConcurrency(len(targets))
		cpu          = newCPUGauge()
	)
	limit = e.workers(limit)
	floor = min(floor, limit)
	worker := func() {
		for j := range jobs {
			tr := e.runTarget(ctx, j.i, j.t, nil)
			if e.onTarget != nil {
				e.onTarget(j.i, tr)
			}
			busy[j.i].Store(false)
		}
	}
	recheck := time.NewTimer(time.Hour) // reset before each wait for a worker
	defer recheck.Stop()
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
			for sent := false; !sent; {
				if workers < floor || workers < limit && cpu.free() {
					workers++
					wg.Go(worker)
				}
				// Wait for a worker; while none may start, look again at
				// the processors every cpuRecheck.
				if workers < limit {
					recheck.Reset(cpuRecheck)
				}
				select {
				case jobs <- job{i, t}:
					sent = true
				case <-recheck.C:
				case <-ctx.Done():
					break feed
				}
				recheck.Stop()
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

// scheduleConcurrency returns how many of n targets a schedule starts at
// once as they come due (floor), and how many it may start while the
// processors keep up (limit): Options.Concurrency for both when the caller
// set it; otherwise Run's default and all n.
//
// Run's default of a few per processor paces a batch so that handshakes do
// not wait for each other's computation. A schedule's targets come due one
// by one, and as many run at once as take longer than the gap between
// them: many while targets hang until their timeout or are far away, when
// they wait for the network and not for the processors, and a bound would
// start every target due late, those that answer at once too. Past the
// floor, a target due starts at once only while no goroutine of the
// process is waiting for a processor (cpuGauge): when the processors are
// what the attempts wait for, one more would only slow the others' phases,
// and it starts late instead.
func (e *Engine) scheduleConcurrency(n int) (floor, limit int) {
	floor = min(n, e.opts.Concurrency)
	if e.concurrencySet {
		return floor, floor
	}
	return floor, n
}

// cpuRecheck is how often a schedule that waits for a worker looks again
// whether the processors keep up.
const cpuRecheck = time.Millisecond

// cpuGauge tells whether the process's goroutines find a processor as soon
// as they can run.
type cpuGauge struct{ sample []metrics.Sample }

func newCPUGauge() *cpuGauge {
	return &cpuGauge{sample: []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}}
}

// free reports whether no more goroutines wait for a processor than there
// are processors (GOMAXPROCS): a reading of the runtime's count, about
// 150 ns.
func (g *cpuGauge) free() bool {
	metrics.Read(g.sample)
	v := g.sample[0].Value
	return v.Kind() != metrics.KindUint64 || v.Uint64() <= uint64(runtime.GOMAXPROCS(0))
}

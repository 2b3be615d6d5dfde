//go:build linux

package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// spin is how long before a packet is due the forwarder stops sleeping and
// spins on the clock. A timer alone wakes late: by tens of microseconds on
// a quiet machine, 100-300 µs on a busy one, even for a real-time thread.
const spin = 300 * time.Microsecond

// queueLen bounds the packets in flight in one direction; past it the
// forwarder stops reading and the TUN device's own queue holds them.
const queueLen = 1 << 14

// packet is a packet read from a TUN device, to be written to the other at due.
type packet struct {
	data []byte
	due  time.Time
}

// forwarder moves packets from one TUN device to the other, in order, each
// written delay after it was read. A reader thread reads them as they come;
// a writer thread sleeps on a timerfd until just before the next one is due,
// spins to its due time, writes it and records how late it was.
type forwarder struct {
	from, to int // TUN file descriptors
	delay    time.Duration
	queue    chan packet
	stop     int           // eventfd: readable once the reader must stop
	done     chan struct{} // closed when the writer must stop
	late     *recorder
	// cut, while true, drops every packet read (Star.Cut).
	cut  atomic.Bool
	wg   sync.WaitGroup
	errs [2]error // what ended the reader and the writer
}

// startForwarder starts forwarding from one TUN file descriptor to another.
func startForwarder(from, to int, delay time.Duration, late *recorder) (*forwarder, error) {
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	f := &forwarder{from: from, to: to, delay: delay, queue: make(chan packet, queueLen),
		stop: stop, done: make(chan struct{}), late: late}
	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.errs[0] = f.read() }()
	go func() { defer f.wg.Done(); f.errs[1] = f.write() }()
	return f, nil
}

// close stops both threads, waits for them and returns what went wrong.
func (f *forwarder) close() error {
	close(f.done)
	if _, err := unix.Write(f.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		return fmt.Errorf("stop forwarder: %w", err) // its reader runs on, polling the eventfd
	}
	f.wg.Wait()
	return errors.Join(f.errs[0], f.errs[1], unix.Close(f.stop))
}

// read reads packets as they arrive and queues them with their due time.
func (f *forwarder) read() error {
	defer realTime()()
	buf := make([]byte, 1<<16)
	fds := []unix.PollFd{{Fd: int32(f.from), Events: unix.POLLIN}, {Fd: int32(f.stop), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll TUN: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		for {
			n, err := unix.Read(f.from, buf)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read TUN: %w", err)
			}
			if f.cut.Load() {
				continue
			}
			p := packet{data: bytes.Clone(buf[:n]), due: time.Now().Add(f.delay)}
			select {
			case f.queue <- p:
			case <-f.done:
				return nil
			}
		}
	}
}

// write writes each queued packet when it is due.
func (f *forwarder) write() error {
	defer realTime()()
	// Timers of this thread fire on time rather than up to 50 µs late.
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set timer slack: %w", err)
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0) // back to the default
	clock, err := newAlarm()
	if err != nil {
		return err
	}
	defer clock.close()
	for {
		var p packet
		select {
		case p = <-f.queue:
		case <-f.done:
			return nil
		}
		if err := clock.sleepUntil(p.due.Add(-spin)); err != nil {
			return err
		}
		for time.Now().Before(p.due) {
		}
		f.late.add(time.Since(p.due))
		if _, err := unix.Write(f.to, p.data); err != nil && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("write TUN: %w", err)
		}
	}
}

// rtPriority is the forwarder threads' real-time priority (1 to 99).
const rtPriority = 50

// realTime locks the calling goroutine to its thread and gives the thread a
// real-time priority (SCHED_FIFO), so that it runs the moment it wakes even
// when the machine is busy; its bursts are short (a spin lasts at most spin).
// Without the privilege it stays a normal thread. The returned function
// undoes both.
func realTime() (undo func()) {
	runtime.LockOSThread()
	rt := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: rtPriority}, 0) == nil
	return func() {
		if rt && unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0) != nil {
			return // the thread exits with its goroutine rather than serve others in real time
		}
		runtime.UnlockOSThread()
	}
}

// alarm sleeps until a point in time on a timerfd (CLOCK_MONOTONIC, the
// clock of Go's monotonic readings).
type alarm struct {
	fd   int
	base time.Time // a reading of time.Now ...
	mono int64     // ... and of CLOCK_MONOTONIC at the same moment, in ns
}

func newAlarm() (*alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	var ts unix.Timespec
	a := &alarm{fd: fd, base: time.Now()}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read the monotonic clock: %w", err)
	}
	a.mono = ts.Nano()
	return a, nil
}

// sleepUntil blocks until t; it returns at once when t has passed.
func (a *alarm) sleepUntil(t time.Time) error {
	if !time.Now().Before(t) {
		return nil
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(a.mono + int64(t.Sub(a.base)))}
	if err := unix.TimerfdSettime(a.fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("arm timerfd: %w", err)
	}
	var buf [8]byte
	for {
		_, err := unix.Read(a.fd, buf[:])
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("read timerfd: %w", err)
			}
			return nil
		}
	}
}

func (a *alarm) close() { unix.Close(a.fd) }

// recorder keeps the lateness of the last packets forwarded.
type recorder struct {
	mu    sync.Mutex
	count int
	ring  [1 << 16]time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.ring[r.count%len(r.ring)] = d
	r.count++
	r.mu.Unlock()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.count = 0
	r.mu.Unlock()
}

// Lateness says how late the link delivered packets: how long past its due
// time (the moment it was read plus the delay) each packet was written.
type Lateness struct {
	// Packets is how many packets crossed the link, both directions.
	Packets int
	// Median, P99 and Max are over the last 65536 of them.
	Median, P99, Max time.Duration
}

func (r *recorder) summary() Lateness {
	r.mu.Lock()
	s := slices.Clone(r.ring[:min(r.count, len(r.ring))])
	n := r.count
	r.mu.Unlock()
	if len(s) == 0 {
		return Lateness{}
	}
	slices.Sort(s)
	return Lateness{Packets: n, Median: s[len(s)/2], P99: s[len(s)*99/100], Max: s[len(s)-1]}
}

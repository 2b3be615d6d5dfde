package history

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// bucketsPerRetain is how many buckets span the retention, at most: 288,
// smokeping's 5 minutes of a day.
const bucketsPerRetain = 288

// Quantiles are the quantiles a bucket keeps of the total's and each
// phase's durations: the median and the bands around it that the status
// page draws.
var Quantiles = [...]float64{0.1, 0.25, 0.5, 0.75, 0.9}

// nq is the number of Quantiles.
const nq = len(Quantiles)

// buckets is a ring of a target's buckets, oldest first from head once
// full, in columns as ring's records are.
type buckets struct {
	start    []int64  // unix milliseconds
	attempts []uint16 // the attempts that started in the bucket
	failures []uint16 // of those, the ones that failed
	class    []uint8  // the most frequent failure class, as ring.class; 0 without failures
	// q[c][nq*i+k] is Quantiles[k] of column c in bucket i, packed, or
	// absent16: c is 0 for the total, 1+p for phases[p] of the ring.
	q    [][]uint16
	head int
	size int
}

// bucket accounts for an attempt that started at ms (unix milliseconds)
// in r's buckets, before the attempt is added to r's records: an attempt
// that starts in a later bucket than the newest one closes that bucket,
// which the records still hold whole (they hold two buckets' worth at
// least, NewWith).
// An attempt that starts in a bucket already closed (a sink's calls may
// overlap) is left out of it.
func (h *History) bucket(r *ring, ms int64) {
	b := ms - ms%h.width
	switch {
	case !r.opened:
		r.open, r.opened = b, true
	case b > r.open:
		r.closeBucket(r.open, h.width)
		r.open = b
	}
}

// closeBucket summarizes the records that started in [start, start+width)
// into a new bucket.
func (r *ring) closeBucket(start, width int64) {
	var in []int
	for i, ms := range r.started {
		if ms >= start && ms < start+width {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return
	}
	o := &r.older
	for len(o.q) < 1+len(r.phases) {
		col := make([]uint16, nq*len(o.start), nq*cap(o.start))
		for i := range col {
			col[i] = absent16
		}
		o.q = append(o.q, col)
	}
	i := o.next()
	o.start[i] = start
	o.attempts[i] = uint16(min(len(in), 1<<16-1))
	counts := map[uint8]int{}
	var failures int
	for _, k := range in {
		if c := r.class[k]; c > 0 {
			failures++
			counts[c]++
		}
	}
	o.failures[i] = uint16(min(failures, 1<<16-1))
	o.class[i] = 0
	for c, n := range counts {
		if best := o.class[i]; best == 0 || n > counts[best] || n == counts[best] && c < best {
			o.class[i] = c
		}
	}
	vs := make([]uint32, 0, len(in))
	for c := range o.q {
		vs = vs[:0]
		for _, k := range in {
			v := r.total[k]
			if c > 0 {
				v = r.dur[c-1][k]
			}
			if v != absent {
				vs = append(vs, v)
			}
		}
		slices.Sort(vs)
		for k, q := range Quantiles {
			o.q[c][nq*i+k] = pack(quantile(vs, q))
		}
	}
}

// next returns where the next bucket goes, growing the ring or
// overwriting its oldest bucket.
func (o *buckets) next() int {
	i := len(o.start)
	if i == o.size {
		i = o.head
		o.head = (o.head + 1) % o.size
		return i
	}
	if i == cap(o.start) {
		n := min(o.size, max(8, 2*i))
		o.start = resize(o.start, n)
		o.attempts = resize(o.attempts, n)
		o.failures = resize(o.failures, n)
		o.class = resize(o.class, n)
		for c := range o.q {
			o.q[c] = resize(o.q[c], nq*n)
		}
	}
	o.start = o.start[:i+1]
	o.attempts = o.attempts[:i+1]
	o.failures = o.failures[:i+1]
	o.class = o.class[:i+1]
	for c := range o.q {
		o.q[c] = o.q[c][:nq*(i+1)]
	}
	return i
}

// quantile returns the q-quantile of sorted vs, between the two nearest
// ranks as the status page's own bands are (core/status/assets/app.js);
// absent when vs is empty.
func quantile(vs []uint32, q float64) uint32 {
	if len(vs) == 0 {
		return absent
	}
	pos := float64(len(vs)-1) * q
	lo := int(pos)
	if lo+1 >= len(vs) {
		return vs[lo]
	}
	return vs[lo] + uint32(float64(vs[lo+1]-vs[lo])*(pos-float64(lo))+0.5)
}

// Buckets are a target's attempts older than those kept one by one, per
// bucket of time, oldest first.
type Buckets struct {
	// Width is every bucket's span.
	Width time.Duration
	// Start is when each bucket begins.
	Start []time.Time
	// Attempts is how many attempts started in each bucket, and Failures
	// how many of those failed.
	Attempts, Failures []int
	// Class is each bucket's most frequent failure class; "" without
	// failures.
	Class []string
	// Total[i][k] is Quantiles[k] of the durations of bucket i's attempts;
	// negative when it has none.
	Total [][nq]time.Duration
	// Durations[p][i][k] is Quantiles[k] of the durations of Phases[p] of
	// the Series in bucket i; negative where the phase did not run.
	Durations [][][nq]time.Duration
}

// bucketsIn returns r's buckets that start in [lo, hi) and end by the
// oldest record r holds, in milliseconds; nil when there are none.
func (h *History) bucketsIn(r *ring, lo, hi int64) *Buckets {
	o := &r.older
	if len(o.start) == 0 {
		return nil
	}
	oldest := r.started[r.head%len(r.started)]
	b := &Buckets{Width: time.Duration(h.width) * time.Millisecond, Durations: make([][][nq]time.Duration, len(r.phases))}
	n := len(o.start)
	for k := range n {
		i := (o.head + k) % n
		if start := o.start[i]; start < lo || start >= hi || start+h.width > oldest {
			continue
		}
		b.Start = append(b.Start, time.UnixMilli(o.start[i]))
		b.Attempts = append(b.Attempts, int(o.attempts[i]))
		b.Failures = append(b.Failures, int(o.failures[i]))
		c := ""
		if o.class[i] > 0 {
			c = string(h.classes[o.class[i]-1])
		}
		b.Class = append(b.Class, c)
		b.Total = append(b.Total, o.quantiles(0, i))
		for p := range r.phases {
			b.Durations[p] = append(b.Durations[p], o.quantiles(1+p, i))
		}
	}
	if len(b.Start) == 0 {
		return nil
	}
	return b
}

// quantiles returns column c's quantiles in bucket i; negative for absent
// ones, as for a column the bucket predates.
func (o *buckets) quantiles(c, i int) [nq]time.Duration {
	var out [nq]time.Duration
	for k := range out {
		out[k] = -1
		if c < len(o.q) {
			if v := o.q[c][nq*i+k]; v != absent16 {
				out[k] = time.Duration(unpack(v)) * time.Microsecond
			}
		}
	}
	return out
}

// absent16 is absent, packed.
const absent16 = math.MaxUint16

// pack returns microseconds v in 16 bits: exactly below 2,048 µs, within
// 0.05 % above (a float of 10 bits of mantissa), which halves a bucket
// where the quantiles' spread is what it says; absent stays absent.
func pack(v uint32) uint16 {
	if v == absent {
		return absent16
	}
	if v < 2048 {
		return uint16(v)
	}
	e := bits.Len32(v) - 11 // v>>e is in [1024, 2048)
	m := (uint64(v) + 1<<(e-1)) >> e
	if m == 2048 {
		m, e = 1024, e+1
	}
	return uint16(2048 + (e-1)*1024 + int(m-1024))
}

// unpack returns the microseconds pack packed into c.
func unpack(c uint16) uint32 {
	if c < 2048 {
		return uint32(c)
	}
	k := int(c) - 2048
	v := uint64(k%1024+1024) << (k/1024 + 1)
	return uint32(min(v, absent-1))
}

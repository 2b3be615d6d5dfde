package report

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// nativeSchema is the resolution a native histogram starts at: buckets
// 2^(2^-3) apart, the finest at most 10 % wide (client_golang's bucket
// factor 1.1).
const nativeSchema = 3

// nativeMinSchema is the coarsest resolution a native histogram halves
// down to, buckets 2^16 apart.
const nativeMinSchema = -4

// nativeZeroThreshold is the upper bound of a native histogram's zero
// bucket, client_golang's default.
const nativeZeroThreshold = prometheus.DefNativeHistogramZeroThreshold

// nativeBounds[s] are the bounds, within [0.5, 1), of the buckets of schema
// s > 0 within one power of two, as client_golang lays them out.
var nativeBounds = func() [nativeSchema + 1][]float64 {
	var b [nativeSchema + 1][]float64
	for s := 1; s <= nativeSchema; s++ {
		n := 1 << s
		b[s] = make([]float64, n)
		for j := range n {
			b[s][j] = math.Exp2(float64(j)/float64(n) - 1)
		}
	}
	return b
}()

// histogram is one duration histogram of Metrics, in either layout, kept
// compact: client_golang's keeps its native buckets in sync.Maps, two per
// histogram, which at 10,000 targets held 5 KB a histogram and grew with
// every bucket an observation opened; this one holds a sorted slice of the
// buckets observed (at most NativeMaxBuckets, or len(Buckets)), 16 bytes
// each, grown a few at a time. Metrics guards it.
type histogram struct {
	created time.Time
	count   uint64
	sum     float64
	zero    uint64 // native: observations within the zero bucket
	schema  int8   // native: the resolution, from nativeSchema down
	// buckets are the non-empty buckets by key: for a native histogram
	// its bucket's index in schema (bucket k holds (2^((k-1)/2^schema),
	// 2^(k/2^schema)]), for a classic one the index of its bound in
	// Buckets (past the last one, only the count has them).
	buckets []bucket
}

// bucket is a histogram's bucket and how many observations it holds.
type bucket struct {
	key int32
	n   uint64
}

// newHistogram returns an empty histogram created now.
func newHistogram() histogram { return histogram{created: time.Now(), schema: nativeSchema} }

// observe adds v seconds to h of layout: a duration, never negative (one
// that is counts in the zero bucket of a native histogram).
func (h *histogram) observe(v float64, layout Layout) {
	h.count++
	h.sum += v
	if layout != Native {
		if i := sort.SearchFloat64s(Buckets, v); i < len(Buckets) {
			h.add(int32(i))
		}
		return
	}
	if v <= nativeZeroThreshold {
		h.zero++
		return
	}
	h.add(nativeKey(v, h.schema))
	for len(h.buckets) > NativeMaxBuckets && h.schema > nativeMinSchema {
		h.halve()
	}
}

// add counts one observation in the bucket of key.
func (h *histogram) add(key int32) {
	i, found := slices.BinarySearchFunc(h.buckets, key, func(b bucket, k int32) int { return int(b.key) - int(k) })
	if !found {
		if len(h.buckets) == cap(h.buckets) {
			// A few buckets more, not twice as many: a histogram opens its
			// buckets one at a time and lives as long as the process.
			h.buckets = append(make([]bucket, 0, len(h.buckets)+4), h.buckets...)
		}
		h.buckets = slices.Insert(h.buckets, i, bucket{key: key})
	}
	h.buckets[i].n++
}

// halve halves h's resolution: each pair of buckets becomes one, as
// client_golang does past its maximum number of buckets.
func (h *histogram) halve() {
	out := h.buckets[:0]
	for _, b := range h.buckets {
		k := b.key
		if k > 0 {
			k++
		}
		k /= 2
		if len(out) > 0 && out[len(out)-1].key == k {
			out[len(out)-1].n += b.n
			continue
		}
		out = append(out, bucket{k, b.n})
	}
	h.buckets = slices.Clip(out)
	h.schema--
}

// nativeKey returns the key of the bucket of v > 0 in schema, as
// client_golang computes it.
func nativeKey(v float64, schema int8) int32 {
	frac, exp := math.Frexp(v)
	if schema > 0 {
		bounds := nativeBounds[schema]
		return int32(sort.SearchFloat64s(bounds, frac) + (exp-1)*len(bounds))
	}
	key := exp
	if frac == 0.5 {
		key--
	}
	offset := (1 << -schema) - 1
	return int32((key + offset) >> -schema)
}

// write returns h as a series of layout labelled labels, as client_golang's
// constant histograms write theirs, its parts from a.
func (h *histogram) write(a *arena, layout Layout, labels []*dto.LabelPair) *dto.Metric {
	c := &a.histograms.take(1)[0]
	c.count, c.sum = h.count, h.sum
	stamp(&c.created, h.created)
	c.h.SampleCount, c.h.SampleSum, c.h.CreatedTimestamp = &c.count, &c.sum, &c.created
	c.m.Label, c.m.Histogram = labels, &c.h
	if layout != Native {
		c.h.Bucket = a.bucketPtrs.take(len(Buckets))
		cells := a.buckets.take(len(Buckets))
		var n uint64
		j := 0
		for i := range Buckets {
			if j < len(h.buckets) && h.buckets[j].key == int32(i) {
				n += h.buckets[j].n
				j++
			}
			b := &cells[i]
			b.n = n
			b.b.CumulativeCount, b.b.UpperBound = &b.n, &Buckets[i]
			c.h.Bucket[i] = &b.b
		}
		return &c.m
	}
	c.schema, c.zeroBand, c.zero = int32(h.schema), nativeZeroThreshold, h.zero
	c.h.Schema, c.h.ZeroThreshold, c.h.ZeroCount = &c.schema, &c.zeroBand, &c.zero
	if len(h.buckets) == 0 {
		return &c.m
	}
	// The spans and deltas of the buckets, a gap of up to two empty
	// buckets within a span, as client_golang's makeBucketsFromMap: first
	// how many of each, then the spans and deltas.
	spans, deltas := 1, len(h.buckets)
	for i := 1; i < len(h.buckets); i++ {
		if gap := h.buckets[i].key - h.buckets[i-1].key - 1; gap > 2 {
			spans++
		} else {
			deltas += int(gap)
		}
	}
	c.h.PositiveSpan, c.h.PositiveDelta = a.spanPtrs.take(spans), a.deltas.take(deltas)[:0]
	cells := a.spans.take(spans)
	var (
		prev int64
		next int32
		span *spanCell
		k    = -1
	)
	for i, b := range h.buckets {
		if gap := b.key - next; i == 0 || gap > 2 {
			k++
			span = &cells[k]
			span.offset = gap
			span.s.Offset, span.s.Length = &span.offset, &span.length
			c.h.PositiveSpan[k] = &span.s
		} else {
			for range gap {
				c.h.PositiveDelta = append(c.h.PositiveDelta, -prev)
				prev = 0
				span.length++
			}
		}
		c.h.PositiveDelta = append(c.h.PositiveDelta, int64(b.n)-prev)
		prev = int64(b.n)
		span.length++
		next = b.key + 1
	}
	return &c.m
}

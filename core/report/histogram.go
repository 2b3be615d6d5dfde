package report

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// metric returns h as a Prometheus metric of desc with labels.
func (h *histogram) metric(desc *prometheus.Desc, layout Layout, labels ...string) prometheus.Metric {
	if layout != Native {
		cumulative := make(map[float64]uint64, len(Buckets))
		var n uint64
		j := 0
		for i, bound := range Buckets {
			if j < len(h.buckets) && h.buckets[j].key == int32(i) {
				n += h.buckets[j].n
				j++
			}
			cumulative[bound] = n
		}
		return prometheus.MustNewConstHistogramWithCreatedTimestamp(desc, h.count, h.sum, cumulative, h.created, labels...)
	}
	positive := make(map[int]int64, len(h.buckets))
	for _, b := range h.buckets {
		positive[int(b.key)] = int64(b.n)
	}
	return prometheus.MustNewConstNativeHistogram(desc, h.count, h.sum, positive, nil, h.zero,
		int32(h.schema), nativeZeroThreshold, h.created, labels...)
}

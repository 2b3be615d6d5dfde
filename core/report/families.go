package report

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// arena hands out the parts of the metric families a gather builds, each
// series' parts in one cell, from chunks of cells: at 10,000 TLS targets a
// gather builds 110,000 series, which one allocation per part made a
// million allocations and a third of its time (BenchmarkMetricsGather).
// Its zero value is ready; a gather's parts live as long as its families.
type arena struct {
	gauges     chunk[gaugeCell]
	counters   chunk[counterCell]
	histograms chunk[histogramCell]
	spans      chunk[spanCell]
	buckets    chunk[bucketCell]
	pairs      chunk[pairCell]
	deltas     chunk[int64]
	spanPtrs   chunk[*dto.BucketSpan]
	bucketPtrs chunk[*dto.Bucket]
	pairPtrs   chunk[*dto.LabelPair]
}

// chunk hands out Ts from chunks twice as large each time (at least 16, at
// most 4,096): a gather of one attempt takes a few, one of 10,000 targets
// mostly whole chunks.
type chunk[T any] struct {
	free []T
	size int // of the last chunk
}

// take returns n zero Ts.
func (c *chunk[T]) take(n int) []T {
	if len(c.free) < n {
		c.size = min(max(2*c.size, 16), 4096)
		c.free = make([]T, max(n, c.size))
	}
	s := c.free[:n:n]
	c.free = c.free[n:]
	return s
}

// A gaugeCell, counterCell, histogramCell, spanCell, bucketCell and
// pairCell hold the parts of one series, span, bucket or label.
type (
	gaugeCell struct {
		m dto.Metric
		g dto.Gauge
		v float64
	}
	counterCell struct {
		m       dto.Metric
		c       dto.Counter
		created timestamppb.Timestamp
		v       float64
	}
	histogramCell struct {
		m             dto.Metric
		h             dto.Histogram
		created       timestamppb.Timestamp
		count, zero   uint64
		sum, zeroBand float64
		schema        int32
	}
	spanCell struct {
		s      dto.BucketSpan
		offset int32
		length uint32
	}
	bucketCell struct {
		b dto.Bucket
		n uint64
	}
	pairCell struct {
		p           dto.LabelPair
		name, value string
	}
)

// labels returns the labels of names and values, in pairs and sorted by
// name, followed by base, whose names sort after them.
func (a *arena) labels(base []*dto.LabelPair, pairs ...string) []*dto.LabelPair {
	out := a.pairPtrs.take(len(pairs)/2 + len(base))
	cells := a.pairs.take(len(pairs) / 2)
	for i := range cells {
		c := &cells[i]
		c.name, c.value = pairs[2*i], pairs[2*i+1]
		c.p.Name, c.p.Value = &c.name, &c.value
		out[i] = &c.p
	}
	copy(out[len(cells):], base)
	return out
}

// gauge returns a gauge of value v labelled labels.
func (a *arena) gauge(v float64, labels []*dto.LabelPair) *dto.Metric {
	c := &a.gauges.take(1)[0]
	c.v = v
	c.g.Value = &c.v
	c.m.Label, c.m.Gauge = labels, &c.g
	return &c.m
}

// counter returns a counter of value n, created at created, labelled
// labels.
func (a *arena) counter(n uint64, created time.Time, labels []*dto.LabelPair) *dto.Metric {
	c := &a.counters.take(1)[0]
	c.v = float64(n)
	stamp(&c.created, created)
	c.c.Value, c.c.CreatedTimestamp = &c.v, &c.created
	c.m.Label, c.m.Counter = labels, &c.c
	return &c.m
}

// stamp sets ts to t.
func stamp(ts *timestamppb.Timestamp, t time.Time) {
	ts.Seconds, ts.Nanos = t.Unix(), int32(t.Nanosecond())
}

// family is a metric family being gathered: its series in groups by the
// values of the labels before target (none, the phase, the class and
// phase), each group's in the order put, which is the targets'.
type family struct {
	mf     *dto.MetricFamily
	groups map[string][]*dto.Metric
}

// newFamily returns an empty family.
func newFamily(name, help string, typ dto.MetricType) family {
	return family{mf: &dto.MetricFamily{Name: &name, Help: &help, Type: &typ}, groups: map[string][]*dto.Metric{}}
}

// put adds x to the group of key.
func (f *family) put(key string, x *dto.Metric) { f.groups[key] = append(f.groups[key], x) }

// done returns the family, its series sorted by their labels' values.
func (f *family) done() *dto.MetricFamily {
	n := 0
	for _, g := range f.groups {
		n += len(g)
	}
	f.mf.Metric = make([]*dto.Metric, 0, n)
	for _, key := range slices.Sorted(maps.Keys(f.groups)) {
		f.mf.Metric = append(f.mf.Metric, f.groups[key]...)
	}
	return f.mf
}

// Merge returns a Gatherer of the families of gs, which must not share a
// name, sorted by name: where prometheus.Gatherers checks every series of
// every family against the others', which is what Metrics.Gather does not
// spend, Merge checks only the families' names.
func Merge(gs ...prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var (
			out  []*dto.MetricFamily
			errs []error
		)
		for _, g := range gs {
			mfs, err := g.Gather()
			out = append(out, mfs...)
			errs = append(errs, err)
		}
		slices.SortStableFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		for i := 1; i < len(out); i++ {
			if out[i].GetName() == out[i-1].GetName() {
				errs = append(errs, fmt.Errorf("metric family %s gathered twice", out[i].GetName()))
			}
		}
		return out, errors.Join(errs...)
	})
}

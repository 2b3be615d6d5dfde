package exporter

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sink"
)

// sinkRecorder is a sink that is also a collector, as the OpenTelemetry
// export is: it counts the attempts it is given, by target.
type sinkRecorder struct {
	mu       sync.Mutex
	attempts map[string]int
	closed   int
	desc     *prometheus.Desc
}

func (r *sinkRecorder) Attempt(a *engine.Attempt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[a.Target]++
	return nil
}

func (r *sinkRecorder) Flush() error { return nil }

func (r *sinkRecorder) Close(res *engine.Result) error {
	if res != nil {
		r.closed++
	}
	return nil
}

func (r *sinkRecorder) count(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[target]
}

func (r *sinkRecorder) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *sinkRecorder) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(r.count("api")))
}

// TestSinks: the sinks made from the first file get every attempt, the
// schedule's and the scrapes', survive a reload, and join /metrics with the
// vantage label.
func TestSinks(t *testing.T) {
	r := &sinkRecorder{attempts: map[string]int{},
		desc: prometheus.NewDesc("test_recorded_total", "Attempts of api recorded.", nil, nil)}
	var vantage string
	f := startWith(t, `vantage = "v1"`+"\n"+`schedule { every = "50ms" }`+targets, Options{
		Sinks: func(first *config.File) ([]sink.Sink, error) {
			vantage = first.Vantage
			return []sink.Sink{r}, nil
		}})
	if vantage != "v1" {
		t.Errorf("Sinks was given a file of vantage %q, want v1", vantage)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.count("broken[refused]") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.count("broken[refused]") == 0 {
		t.Fatal("no scheduled attempt reached the sink")
	}
	f.set(`vantage = "v1"` + "\n" + targets) // no schedule: what comes next is scraped
	if err := f.exp.Reload(); err != nil {
		t.Fatal(err)
	}
	before := r.count("slow")
	f.get(t, "/probe?target=slow", nil)
	if got := r.count("slow"); got != before+1 {
		t.Errorf("a scrape after a reload: the sink has %d attempts of slow, want %d", got, before+1)
	}
	if r.closed != 0 {
		t.Errorf("the sink was closed %d times with a result; the exporter never closes it", r.closed)
	}
	if got := f.metrics(t, "/metrics", nil)["test_recorded_total"][`{vantage="v1"}`]; got < 1 {
		t.Errorf(`test_recorded_total{vantage="v1"} = %v, want the sink's count`, got)
	}
}

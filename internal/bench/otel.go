//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/otel"
	"github.com/probe-dev/probe/core/sink"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// deadCollectorResult is attempts per second of resolve+connect+tls on
// loopback with no export and with every attempt exported as a trace to a
// collector that accepts connections and never answers, each the median of
// its rounds; the ratio is the median of the rounds' own ratios; dropped
// counts the spans the export dropped in the end.
type deadCollectorResult struct {
	Alone, Dead, Ratio float64
	Dropped            uint64
}

// measureDeadCollector runs the built-ins' engine against the lab, alone
// and with the OpenTelemetry sink exporting to a dead collector, one after
// the other in rounds (issue 16: export must cost dropped spans, not
// throughput).
func measureDeadCollector(ctx context.Context, o throughputOptions) (res deadCollectorResult, err error) {
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	src := fmt.Sprintf(throughputHCL, o.Concurrency, o.Attempts/o.Concurrency, l.DNS.Addr, l.CAFile, labHost, l.TLS.Addr.Port())
	file, err := loadPipeline(src, builtins.Plugins())
	if err != nil {
		return res, err
	}
	defer file.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer dead.Close()
	go func() {
		var held []net.Conn // accepted, never read nor answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	traces, err := otel.New(ctx, otel.Options{Endpoint: "http://" + dead.Addr().String()})
	if err != nil {
		return res, err
	}
	run := func(export bool) error {
		e := engine.New(file.Options)
		if export {
			sink.Attach(e, traces)
		}
		res := e.Run(ctx, file.Targets)
		if res.Summary.Failed > 0 {
			return fmt.Errorf("probe: %d of %d targets failed: %v", res.Summary.Failed, res.Summary.Targets, res.Summary.FailuresByClass)
		}
		return nil
	}
	var alone, withDead, ratios []float64
	for round := 0; round <= o.Rounds; round++ { // round 0 warms up
		var rates [2]float64
		for k := range 2 {
			export := (k+round)%2 == 1 // alternate which goes first
			time.Sleep(settle)
			start := time.Now()
			if err := run(export); err != nil {
				return res, err
			}
			if export {
				rates[1] = float64(o.Attempts) / time.Since(start).Seconds()
			} else {
				rates[0] = float64(o.Attempts) / time.Since(start).Seconds()
			}
		}
		if round == 0 {
			continue
		}
		alone, withDead, ratios = append(alone, rates[0]), append(withDead, rates[1]), append(ratios, rates[1]/rates[0])
		if o.Log != nil {
			fmt.Fprintf(o.Log, "dead collector round %d, attempts/s: alone %.0f, exporting %.0f\n", round, rates[0], rates[1])
		}
	}
	_, queueFull, failed := traces.Counts()
	res = deadCollectorResult{Alone: medianOf(alone), Dead: medianOf(withDead), Ratio: medianOf(ratios), Dropped: queueFull + failed}
	go func() { _ = traces.Shutdown() }() // gives up after 5s: the collector never answers
	return res, nil
}

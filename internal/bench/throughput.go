//go:build linux

package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// labHost is the lab's name for its healthy TLS server.
const labHost = "api.probe.test"

// throughputHCL is the pipeline of the throughput run: resolve (one A query
// to the lab's DNS server), connect, TLS verified against the lab's CA;
// concurrency targets of attempts attempts each.
const throughputHCL = `
run {
  concurrency = %[1]d
  attempts    = %[2]d
  timeout     = "5s"
}

resolver "lab" {
  plugin      = "dns-miekg"
  servers     = [%[3]q]
  query_types = ["A"]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin  = "tls"
  ca_file = %[4]q
}

pipeline "https" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "api" {
  for_each = toset([for i in range(%[1]d) : tostring(i)])
  host     = %[5]q
  port     = %[6]d
  pipeline = pipeline.https
}
`

// settle is the pause before each contender's turn.
const settle = 300 * time.Millisecond

// throughputOptions size a throughput run.
type throughputOptions struct {
	Attempts    int       // attempts per contender per round, a multiple of Concurrency
	Rounds      int       // rounds; each contender's figure is its median
	Concurrency int       // attempts at once
	Probe       string    // the probe binary, which serves the built-ins out of process for --isolate
	Log         io.Writer // each round's rates; nil for none
}

// throughputResult is attempts per second of resolve+connect+tls on
// loopback, each the median of its rounds, and the ratios, each the median
// of the rounds' own ratios: contenders of one round ran moments apart, on
// the same machine load.
type throughputResult struct {
	Raw, Builtin, Isolated, Blackbox float64

	BuiltinVsRaw, IsolatedVsRaw, BuiltinVsBlackbox float64
}

// measureThroughput runs the plain loop, probe's engine with built-in
// plugins, the same with the plugins out of process, and blackbox_exporter's
// tcp prober with TLS, one after another in rounds, against one loopback
// lab.
func measureThroughput(ctx context.Context, o throughputOptions) (res throughputResult, err error) {
	l, err := lab.Start()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	src := fmt.Sprintf(throughputHCL, o.Concurrency, o.Attempts/o.Concurrency, l.DNS.Addr, l.CAFile, labHost, l.TLS.Addr.Port())

	builtin, err := loadPipeline(src, builtins.Plugins())
	if err != nil {
		return res, err
	}
	defer builtin.Close()
	host, err := pluginhost.New(hclog.NewNullLogger())
	if err != nil {
		return res, err
	}
	defer host.Close()
	remote, err := host.Load(pluginhost.Binary{Name: "builtin", Path: o.Probe, Args: []string{"serve-builtin-plugins"}})
	if err != nil {
		return res, err
	}
	plugins := map[string]*sdk.Plugin{}
	for _, p := range remote {
		plugins[p.Info.Name] = p
	}
	isolated, err := loadPipeline(src, plugins)
	if err != nil {
		return res, err
	}
	defer isolated.Close()
	bb, err := startBlackbox(nil, false, "", l.CAFile, labHost)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, bb.close()) }()

	dnsAddr := netip.MustParseAddrPort(l.DNS.Addr)
	roots := l.CA.Pool()
	contenders := []struct {
		name string
		rate *float64
		run  func(n int) error
	}{
		{"raw", &res.Raw, func(n int) error { return rawLoop(ctx, n, o.Concurrency, dnsAddr, l.TLS.Addr.Port(), roots) }},
		{"builtin", &res.Builtin, func(n int) error { return runEngine(ctx, builtin, n) }},
		{"isolated", &res.Isolated, func(n int) error { return runEngine(ctx, isolated, n) }},
		{"blackbox", &res.Blackbox, func(n int) error {
			return blackboxLoop(ctx, bb, n, o.Concurrency, l.TLS.Addr.String())
		}},
	}
	rates := make([][]float64, len(contenders))
	for round := 0; round <= o.Rounds; round++ { // round 0 warms up
		for k := range contenders {
			// Each round starts with another contender, every other round in
			// reverse, so that none always follows the same one (whose
			// process may still be busy cleaning up); and each starts after
			// a pause.
			i := (k + round) % len(contenders)
			if round%2 == 1 {
				i = len(contenders) - 1 - i
			}
			c := contenders[i]
			time.Sleep(settle)
			start := time.Now()
			if err := c.run(o.Attempts); err != nil {
				return res, err
			}
			if round > 0 {
				rates[i] = append(rates[i], float64(o.Attempts)/time.Since(start).Seconds())
			}
		}
		if round > 0 && o.Log != nil {
			fmt.Fprintf(o.Log, "throughput round %d, attempts/s:", round)
			for i, c := range contenders {
				fmt.Fprintf(o.Log, " %s %.0f", c.name, rates[i][round-1])
			}
			fmt.Fprintln(o.Log)
		}
	}
	for i, c := range contenders {
		*c.rate = medianOf(rates[i])
	}
	ratio := func(a, b []float64) float64 {
		r := make([]float64, len(a))
		for i := range a {
			r[i] = a[i] / b[i]
		}
		return medianOf(r)
	}
	// rates are in the contenders' order: raw, builtin, isolated, blackbox.
	res.BuiltinVsRaw = ratio(rates[1], rates[0])
	res.IsolatedVsRaw = ratio(rates[2], rates[0])
	res.BuiltinVsBlackbox = ratio(rates[1], rates[3])
	return res, nil
}

// loadPipeline loads a pipeline file from src with plugins.
func loadPipeline(src string, plugins map[string]*sdk.Plugin) (*config.File, error) {
	l := config.NewLoader(config.Options{Plugins: plugins})
	f, diags := l.LoadSource("bench.hcl", []byte(src))
	if diags.HasErrors() {
		var b strings.Builder
		l.WriteDiagnostics(&b, diags, 100, false)
		return nil, fmt.Errorf("benchmark pipeline:\n%s", &b)
	}
	return f, nil
}

// runEngine runs every target of f in probe's engine; it must make n
// attempts, all successful.
func runEngine(ctx context.Context, f *config.File, n int) error {
	res := engine.New(f.Options).Run(ctx, f.Targets)
	if res.Summary.Failed > 0 {
		return fmt.Errorf("probe: %d of %d targets failed: %v", res.Summary.Failed, res.Summary.Targets, res.Summary.FailuresByClass)
	}
	if got := res.Stats[engine.TotalPhase].Count; got != n {
		return fmt.Errorf("probe made %d attempts, want %d", got, n)
	}
	return nil
}

// rawLoop runs n plain attempts against the lab, concurrency at once.
func rawLoop(ctx context.Context, n, concurrency int, dnsAddr netip.AddrPort, port uint16, roots *x509.CertPool) error {
	return parallel(n, concurrency, func() error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := rawAttempt(actx, dnsAddr, labHost, port, roots, false)
		return err
	})
}

// blackboxLoop asks blackbox_exporter for n tcp_tls probes of target,
// concurrency at once; every probe must succeed.
func blackboxLoop(ctx context.Context, bb *blackbox, n, concurrency int, target string) error {
	return parallel(n, concurrency, func() error {
		m, err := bb.probe(ctx, "tcp_tls", target)
		if err != nil {
			return err
		}
		if m["probe_success"] != 1 {
			return fmt.Errorf("blackbox_exporter: tcp_tls probe of %s failed", target)
		}
		return nil
	})
}

// parallel calls fn n times, concurrency calls at once, and returns the
// first error.
func parallel(n, concurrency int, fn func() error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := fn(); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// medianOf returns the median of v, 0 when empty.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

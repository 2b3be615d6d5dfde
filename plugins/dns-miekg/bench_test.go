package dnsmiekg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// benchParallelism is goroutines per CPU in the resolve benchmarks: DNS
// exchanges mostly wait, so a few per CPU keep the machine busy.
const benchParallelism = 8

// benchOps starts a lab server and returns one resolution of a name with A
// and AAAA records through the dns-miekg resolver (probe), and through a
// plain miekg/dns loop doing the same queries (miekg): A and AAAA at once,
// EDNS0 1232, a new UDP socket per query, the answers checked.
func benchOps(tb testing.TB) (probe, miekg func() error) {
	s := startDNS(tb)
	s.AddAddr("bench", addrs("127.0.0.1", "::1")...)
	const host = "bench.probe.test"
	r := newResolver(tb, map[string]cty.Value{"servers": strs(s.Addr)})
	probe = func() error {
		resp, err := r.Resolve(context.Background(), &sdk.ResolveRequest{Host: host, Port: 443})
		if err == nil && (resp.Failure != nil || len(resp.Addresses) != 2) {
			err = fmt.Errorf("resolve: %v %v", resp.Failure, resp.Addresses)
		}
		return err
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	query := func(qtype uint16) error {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(host), qtype)
		m.SetEdns0(1232, false)
		in, _, err := c.Exchange(m, s.Addr)
		if err == nil && (in.Rcode != dns.RcodeSuccess || len(in.Answer) != 1) {
			err = fmt.Errorf("rcode %d, %d answers", in.Rcode, len(in.Answer))
		}
		return err
	}
	miekg = func() error {
		var wg sync.WaitGroup
		var errAAAA error
		wg.Go(func() { errAAAA = query(dns.TypeAAAA) })
		errA := query(dns.TypeA)
		wg.Wait()
		return errors.Join(errA, errAAAA)
	}
	return probe, miekg
}

// BenchmarkResolve measures each of benchOps' resolutions on its own.
func BenchmarkResolve(b *testing.B) {
	probe, miekg := benchOps(b)
	for _, bm := range []struct {
		name string
		op   func() error
	}{{"probe", probe}, {"miekg", miekg}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetParallelism(benchParallelism)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bm.op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkResolveVsMiekg runs benchOps' two resolutions in alternating
// 100 ms slices for 10 s, so that both see the same machine, and reports
// each one's resolutions per second and their ratio (probe over miekg), the
// figure `make bench-dns` prints. Run it with -benchtime 1x.
func BenchmarkResolveVsMiekg(b *testing.B) {
	probe, miekg := benchOps(b)
	workers := benchParallelism * runtime.GOMAXPROCS(0)
	var ops [2]int64
	var took [2]time.Duration
	for range b.N {
		for range 50 {
			for i, op := range []func() error{probe, miekg} {
				n, d, err := runFor(100*time.Millisecond, workers, op)
				if err != nil {
					b.Fatal(err)
				}
				ops[i] += n
				took[i] += d
			}
		}
	}
	rate := func(i int) float64 { return float64(ops[i]) / took[i].Seconds() }
	b.ReportMetric(rate(0), "probe/s")
	b.ReportMetric(rate(1), "miekg/s")
	b.ReportMetric(rate(0)/rate(1), "ratio")
}

// runFor runs op in workers goroutines until d has passed and returns how
// many ops finished and how long they all took.
func runFor(d time.Duration, workers int, op func() error) (int64, time.Duration, error) {
	var (
		n    atomic.Int64
		stop atomic.Bool
		errs = make(chan error, workers)
		wg   sync.WaitGroup
	)
	start := time.Now()
	time.AfterFunc(d, func() { stop.Store(true) })
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				if err := op(); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return n.Load(), time.Since(start), <-errs
}

// BenchmarkDnsperf runs dnsperf (DNS-OARC, Debian package dnsperf) for 5
// seconds against the lab server with the same queries and reports its
// queries per second as the metric qps: what the server itself can answer,
// beside which the resolve rates are read. Run it with -benchtime 1x.
func BenchmarkDnsperf(b *testing.B) {
	bin, err := exec.LookPath("dnsperf")
	if err != nil {
		b.Fatalf("dnsperf is not installed (apt-get install dnsperf; .ci/deps bench does): %v", err)
	}
	s := startDNS(b)
	s.AddAddr("bench", addrs("127.0.0.1", "::1")...)
	queries := filepath.Join(b.TempDir(), "queries")
	if err := os.WriteFile(queries, []byte("bench.probe.test A\nbench.probe.test AAAA\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	var qps float64
	for range b.N {
		out, err := exec.Command(bin, "-s", host, "-p", port, "-d", queries, "-l", "5", "-c", "16", "-T", "2", "-q", "256").CombinedOutput()
		if err != nil {
			b.Fatalf("dnsperf: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("dnsperf printed no rate:\n%s", out)
		}
		if qps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(qps, "qps")
}

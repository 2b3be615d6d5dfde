package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/core/stats"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// labHCL probes the lab with the built-in plugins: %[1]q is its DNS server,
// %[2]q its CA file, %[3]d its TLS port, %[4]d its TCP port, %[5]d a refused
// port, %[6]d how many targets of the tcp pipeline there are beside the
// others, %[7]d the port of a TCP server that greets with a banner. Target
// greeting fails with http.protocol in each attempt, after the lab's DNS
// server delayed its answer: its phases are the first in target order, the
// last to finish. Targets two and refused fail with tcp.refused (two at
// 127.0.0.2 only), nx with dns.nxdomain.
const labHCL = `
run {
  attempts    = 3
  concurrency = 8
  timeout     = "5s"
}

resolver "lab" {
  plugin      = "dns-miekg"
  servers     = [%[1]q]
  query_types = ["A"]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin  = "tls"
  ca_file = %[2]q
}

handshake "http" { plugin = "http" }

pipeline "http" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.http]
}

pipeline "https" {
  resolvers  = [resolver.lab]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

pipeline "tcp" {
  resolvers = [resolver.lab]
  dialer    = dialer.tcp
}

pipeline "all" {
  resolvers      = [resolver.lab]
  dialer         = dialer.tcp
  address_policy = "all"
}

target "greeting" {
  host     = "slow.probe.test"
  port     = %[7]d
  pipeline = pipeline.http
}

target "api" {
  for_each = ["a", "b"]
  host     = "api.probe.test"
  port     = %[3]d
  pipeline = pipeline.https
}

target "tcp" {
  for_each = [for i in range(%[6]d) : tostring(i)]
  host     = "tcp.probe.test"
  port     = %[4]d
  pipeline = pipeline.tcp
}

target "two" {
  host     = "two.probe.test"
  port     = %[4]d
  pipeline = pipeline.all
}

target "refused" {
  host     = "tcp.probe.test"
  port     = %[5]d
  pipeline = pipeline.tcp
}

target "nx" {
  host     = "nx.probe.test"
  port     = %[4]d
  pipeline = pipeline.tcp
}
`

// loadLab starts the lab and loads labHCL over it with tcpTargets targets
// of the tcp pipeline.
func loadLab(t *testing.T, tcpTargets int) *config.File {
	t.Helper()
	l, err := lab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	l.DNS.AddAddr("two", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"))
	greeter, err := lab.StartTCP("SSH-2.0-lab\r\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = greeter.Close() })
	src := fmt.Sprintf(labHCL, l.DNS.Addr, l.CAFile, l.TLS.Addr.Port(), l.TCP.Addr.Port(), l.Refused.Port(), tcpTargets,
		greeter.Addr.Port())
	ld := config.NewLoader(config.Options{Plugins: builtins.Plugins()})
	f, diags := ld.LoadSource("lab.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// aggregates is what a Result says beside its attempts.
type aggregates struct {
	Targets []targetAggregates
	Phases  []string
	Stats   map[string]stats.Summary
	Summary engine.Summary
}

type targetAggregates struct {
	Name            string
	OK              bool
	Phases          []string
	Stats           map[string]stats.Summary
	FailuresByClass map[sdk.Class]int
	ByAddress       []engine.AddressResult
}

// aggregatesOf returns what res says beside its attempts.
func aggregatesOf(res *engine.Result) aggregates {
	out := aggregates{Phases: res.Phases, Stats: res.Stats, Summary: res.Summary}
	for _, tr := range res.Targets {
		out.Targets = append(out.Targets, targetAggregates{Name: tr.Target.Name, OK: tr.OK, Phases: tr.Phases,
			Stats: tr.Stats, FailuresByClass: tr.FailuresByClass, ByAddress: tr.ByAddress})
	}
	return out
}

// summarize aggregates attempts as the engine documents: phases in the
// order first seen, then the total; statistics per phase; failures by
// class, nil when none.
func summarize(attempts []engine.Attempt) (phases []string, st map[string]stats.Summary, byClass map[sdk.Class]int) {
	accs := map[string]*stats.Accumulator{}
	add := func(name string, d time.Duration, ok bool) {
		if accs[name] == nil {
			accs[name] = &stats.Accumulator{}
			if name != engine.TotalPhase {
				phases = append(phases, name)
			}
		}
		accs[name].Add(d, ok)
	}
	for _, a := range attempts {
		for _, p := range a.Phases {
			add(p.Name, p.Duration, p.OK)
		}
		add(engine.TotalPhase, a.Total, a.OK)
		if a.Failure != nil {
			if byClass == nil {
				byClass = map[sdk.Class]int{}
			}
			byClass[a.Failure.Class]++
		}
	}
	if len(attempts) > 0 {
		phases = append(phases, engine.TotalPhase)
	}
	st = map[string]stats.Summary{}
	for name, acc := range accs {
		st[name] = acc.Summary()
	}
	return phases, st, byClass
}

// expected computes a run's aggregates from the attempts of each of
// targets, as the engine documents them.
func expected(targets []*engine.TargetResult, attemptsOf func(*engine.TargetResult) []engine.Attempt) aggregates {
	out := aggregates{Summary: engine.Summary{FailuresByClass: map[sdk.Class]int{}}}
	var all []engine.Attempt
	for _, tr := range targets {
		attempts := attemptsOf(tr)
		all = append(all, attempts...)
		ta := targetAggregates{Name: tr.Target.Name}
		ta.Phases, ta.Stats, ta.FailuresByClass = summarize(attempts)
		ta.OK = len(attempts) > 0 && ta.FailuresByClass == nil
		if tr.Target.Pipeline.AddressPolicy == engine.AddressAll {
			var order []netip.AddrPort
			byAddr := map[netip.AddrPort][]engine.Attempt{}
			for _, a := range attempts {
				if byAddr[a.Address] == nil {
					order = append(order, a.Address)
				}
				byAddr[a.Address] = append(byAddr[a.Address], a)
			}
			for _, addr := range order {
				ar := engine.AddressResult{Address: addr}
				ar.Phases, ar.Stats, ar.FailuresByClass = summarize(byAddr[addr])
				ar.OK = ar.FailuresByClass == nil
				ta.ByAddress = append(ta.ByAddress, ar)
			}
		}
		out.Targets = append(out.Targets, ta)
		out.Summary.Targets++
		if ta.OK {
			out.Summary.OK++
		} else {
			out.Summary.Failed++
		}
		for c, n := range ta.FailuresByClass {
			out.Summary.FailuresByClass[c] += n
		}
	}
	out.Phases, out.Stats, _ = summarize(all)
	return out
}

// TestDiscardAttempts runs the same targets over the lab twice, keeping the
// attempts and discarding them. Each run's statistics are those its
// attempts give (the ones it kept, or the ones it streamed to OnAttempt);
// the discarding run keeps none; and both saw the same outcomes.
func TestDiscardAttempts(t *testing.T) {
	f := loadLab(t, 6)
	run := func(discard bool) (*engine.Result, map[string][]engine.Attempt) {
		opts := f.Options
		opts.DiscardAttempts = discard
		eng := engine.New(opts)
		streamed := map[string][]engine.Attempt{}
		eng.OnAttempt(func(a engine.Attempt) { streamed[a.Target] = append(streamed[a.Target], a) })
		return eng.Run(context.Background(), f.Targets), streamed
	}
	kept, _ := run(false)
	discarded, streamed := run(true)

	want := engine.Summary{Targets: 12, OK: 8, Failed: 4,
		FailuresByClass: map[sdk.Class]int{"http.protocol": 3, sdk.ClassTCPRefused: 6, sdk.ClassDNSNXDomain: 3}}
	if diff := cmp.Diff(want, kept.Summary); diff != "" {
		t.Fatalf("the lab run's summary (-want +got):\n%s", diff)
	}
	// In target order, not in the order the targets finished.
	wantPhases := []string{sdk.PhaseResolve, sdk.PhaseConnect, "http", sdk.PhaseTLS, engine.TotalPhase}
	for _, res := range []*engine.Result{kept, discarded} {
		if diff := cmp.Diff(wantPhases, res.Phases); diff != "" {
			t.Errorf("the run's phases (-want +got):\n%s", diff)
		}
	}
	addrs := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	for _, tr := range discarded.Targets {
		if tr.Attempts != nil {
			t.Errorf("%s: %d attempts kept", tr.Target.Name, len(tr.Attempts))
		}
		if n := len(streamed[tr.Target.Name]); n != tr.Stats[engine.TotalPhase].Count {
			t.Errorf("%s: %d attempts streamed, %d counted", tr.Target.Name, n, tr.Stats[engine.TotalPhase].Count)
		}
	}
	if diff := cmp.Diff(expected(kept.Targets, func(tr *engine.TargetResult) []engine.Attempt { return tr.Attempts }),
		aggregatesOf(kept), addrs); diff != "" {
		t.Errorf("keeping: aggregates of the attempts kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(expected(discarded.Targets, func(tr *engine.TargetResult) []engine.Attempt { return streamed[tr.Target.Name] }),
		aggregatesOf(discarded), addrs); diff != "" {
		t.Errorf("discarding: aggregates of the attempts streamed (-want +got):\n%s", diff)
	}
	counts := cmp.Transformer("counts", func(s stats.Summary) [3]int { return [3]int{s.Count, s.OK, s.Failed} })
	if diff := cmp.Diff(aggregatesOf(kept), aggregatesOf(discarded), addrs, counts); diff != "" {
		t.Errorf("outcomes, keeping and discarding (-keeping +discarding):\n%s", diff)
	}
}

// TestDiscardAttemptsMemory measures the heap a run's Result holds: the
// discarding run's is a small part of what the keeping run's attempts, with
// their phases and attributes, hold (by a margin of two: a target's
// statistics take about half of what one attempt does, and each target has
// five), small enough that a single attempt kept per target would show.
func TestDiscardAttemptsMemory(t *testing.T) {
	f := loadLab(t, 300)
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // the second empties the sync.Pools the first left to their victim caches
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	retained := func(discard bool) (int64, *engine.Result) {
		opts := f.Options
		opts.DiscardAttempts, opts.Attempts = discard, 5
		eng := engine.New(opts)
		eng.OnAttempt(func(engine.Attempt) {})
		before := heap()
		res := eng.Run(context.Background(), f.Targets)
		n := heap() - before
		runtime.KeepAlive(res)
		return n, res
	}
	retained(false) // warm-up: the plugins' and the lab's first use
	discarding, _ := retained(true)
	keeping, res := retained(false)
	targets, attempts := int64(len(res.Targets)), int64(res.Stats[engine.TotalPhase].Count)
	perAttempt := (keeping - discarding) / attempts
	t.Logf("%d targets, %d attempts: keeping holds %d B (%d B per target), discarding %d B (%d B per target); an attempt %d B",
		targets, attempts, keeping, keeping/targets, discarding, discarding/targets, perAttempt)
	if discarding > attempts*perAttempt/4 {
		t.Errorf("discarding the attempts holds %d B, not far below the %d attempts' %d B", discarding, attempts, attempts*perAttempt)
	}
}

// TestDiscardTargets runs the lab's targets through RunSeq keeping no
// target result: its summary, phases and counts are those of a run that
// keeps everything, and it holds a small part of the heap that the
// targets' results hold in a run that keeps them (no attempt in either).
func TestDiscardTargets(t *testing.T) {
	f := loadLab(t, 300)
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	run := func(discardTargets bool) (int64, *engine.Result) {
		opts := f.Options
		opts.DiscardAttempts, opts.DiscardTargets = true, discardTargets
		eng := engine.New(opts)
		eng.OnAttempt(func(engine.Attempt) {})
		before := heap()
		res := eng.RunSeq(context.Background(), slices.Values(f.Targets), eng.Rounds(f.Targets))
		n := heap() - before
		runtime.KeepAlive(res)
		return n, res
	}
	run(false) // warm-up
	keeping, kept := run(false)
	discarding, discarded := run(true)
	t.Logf("%d targets: their results hold %d B, a run without them %d B", len(f.Targets), keeping, discarding)
	if discarded.Targets != nil {
		t.Errorf("%d target results kept", len(discarded.Targets))
	}
	counts := cmp.Transformer("counts", func(s stats.Summary) [3]int { return [3]int{s.Count, s.OK, s.Failed} })
	if diff := cmp.Diff(aggregates{Phases: kept.Phases, Stats: kept.Stats, Summary: kept.Summary},
		aggregatesOf(discarded), counts); diff != "" {
		t.Errorf("keeping the targets' results and not (-keeping +discarding):\n%s", diff)
	}
	if discarding > keeping/10 {
		t.Errorf("a run without its targets' results holds %d B, not far below the %d B of one with them", discarding, keeping)
	}
}

// TestRunSeqInterrupted cancels a run before it starts: RunSeq reads
// every target all the same and counts each as interrupted, with and
// without the targets' results.
func TestRunSeqInterrupted(t *testing.T) {
	f := loadLab(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, discard := range []bool{false, true} {
		opts := f.Options
		opts.DiscardAttempts, opts.DiscardTargets = discard, discard
		res := engine.New(opts).RunSeq(ctx, slices.Values(f.Targets), 0)
		want := engine.Summary{Targets: len(f.Targets), Interrupted: len(f.Targets), FailuresByClass: map[sdk.Class]int{}}
		if diff := cmp.Diff(want, res.Summary); diff != "" || !res.Interrupted {
			t.Errorf("discard %v: interrupted %v, summary (-want +got):\n%s", discard, res.Interrupted, diff)
		}
		if !discard && (len(res.Targets) != len(f.Targets) || !res.Targets[0].Interrupted) {
			t.Errorf("%d target results of %d, the first interrupted: %v", len(res.Targets), len(f.Targets), res.Targets[0].Interrupted)
		}
	}
}

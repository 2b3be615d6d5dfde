// Package engine runs probe pipelines: for each target, attempts of
// resolve → dial → handshakes, scheduled in parallel under a concurrency
// bound or one target after another, each under one deadline, and the
// aggregation of their phases into statistics.
//
// The engine works on Go values: a Target names a Pipeline whose stages hold
// sdk components. core/config builds them from a pipeline file; a Go program
// may build them itself.
package engine

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/sdk"
)

// Mode says how targets are scheduled.
type Mode string

// The scheduling modes.
const (
	// Parallel runs targets concurrently, at most Options.Concurrency at once.
	Parallel Mode = "parallel"
	// Sequential runs one target after another.
	Sequential Mode = "sequential"
)

// Options are a run's scheduling settings.
type Options struct {
	// Mode is Parallel (the default) or Sequential.
	Mode Mode
	// Concurrency bounds how many targets run at once in Parallel mode.
	// Run lowers it to what the process's file descriptor limit
	// (RLIMIT_NOFILE) leaves room for, about four per attempt. Default
	// DefaultConcurrency(): 16 on two cores, which Schedule, when it is
	// not set, goes past while the processors keep up.
	Concurrency int
	// Attempts is how many attempts each target gets. Default 1.
	Attempts int
	// Interval is the time from the start of one attempt of a target to the
	// start of its next; an attempt that takes longer is followed at once.
	// Default 0.
	Interval time.Duration
	// Timeout is each attempt's deadline, shared by all its phases.
	// Default 5s.
	Timeout time.Duration
	// Logger receives one debug line per finished attempt. Default: none.
	Logger hclog.Logger
	// Keep, when set, is offered the connection of every attempt that
	// succeeded, once its Total is taken; returning true takes it over, and
	// the engine does not close it. core/preconnect keeps warm connections
	// this way. It must be safe for concurrent use. Default: none, every
	// connection is closed.
	Keep func(t *Target, a *Attempt, conn net.Conn) bool
	// DiscardAttempts, when set, leaves the attempts out of the Result: Run
	// hands each to OnAttempt as it finishes and computes every statistic
	// from it as ever (a TargetResult has its OK, Phases, Stats,
	// FailuresByClass and ByAddress; the Result its Phases, Stats and
	// Summary), but TargetResult.Attempts stays empty, and Run holds at most
	// the last round's attempts of each target running. For a caller that
	// streams the attempts and needs only the aggregates at the end. Nor do
	// the statistics grow with the attempts: each phase's keeps its first
	// 65,536 durations for exact percentiles, and past them estimates them
	// (stats.NewBounded). A run then holds about 1 KB per target, its
	// statistics, rather than that and every attempt's phases and
	// attributes. Default false: every attempt is kept.
	DiscardAttempts bool
	// ExactStats, under DiscardAttempts, keeps the statistics exact all
	// the same: every duration is kept for the percentiles, 8 bytes per
	// phase per attempt, for a caller that holds far more of each attempt
	// itself (`probe run -o json`, which encodes each attempt as it comes).
	ExactStats bool
	// DiscardTargets, when set, leaves the targets' results out of the
	// Result too: Run counts each target in the Summary as it is done, and
	// Result.Targets is nil. With DiscardAttempts and targets read as the
	// run goes (RunSeq), a run holds nothing that grows with its targets:
	// for a caller that streams the attempts and needs the Summary and the
	// run's Phases and Stats alone (`probe run -o jsonl`), or takes each
	// target's result as it is done (OnTarget, `probe run -o json`).
	// Default false.
	DiscardTargets bool
	// Secrets are strings no output may show (the values of sensitive
	// variables and those derived from them): the engine replaces them, and
	// the forms in which they can appear encoded (Forms), before anyone sees
	// an attempt (its target name, failure message and attributes) or a
	// result (its targets' names and hosts), its own log lines included.
	// Redactor does the same for what a consumer shows from elsewhere.
	Secrets []string
}

// Defaults for Options.
const (
	DefaultAttempts = 1
	DefaultTimeout  = 5 * time.Second
)

// ConcurrencyPerProcessor is how many targets run at once by default for
// each processor the process may use (GOMAXPROCS): DefaultConcurrency.
const ConcurrencyPerProcessor = 8

// DefaultConcurrency returns the default Options.Concurrency,
// ConcurrencyPerProcessor × GOMAXPROCS: 16 on two cores, 64 on eight.
//
// A TLS handshake is computation, and attempts that compute at once share
// the processors: past a point, each waits for the others, and the wait is
// in its phases (SchedLatency). Measured on two cores with 200 targets of a
// TLS server that answers after 40 ms, as a distant one does
// (docs/performance.md#concurrency-and-distortion), the tls phase's median
// stays within 1.03-1.07× of what one target at a time measures up to 8
// targets per processor, on one processor and on two; at 16 per processor
// it reads 1.12-1.20× on two, and at 32 (the old default of 64 there)
// 1.65-1.75×. Against a server on the same machine, whose handshakes take
// the same processors, no concurrency above one leaves the phases
// undistorted: there the run says so (SchedLatency.Distorted).
func DefaultConcurrency() int { return ConcurrencyPerProcessor * runtime.GOMAXPROCS(0) }

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = Parallel
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency()
	}
	if o.Mode == Sequential {
		o.Concurrency = 1
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o
}

// Target is one thing to probe.
type Target struct {
	// Name identifies the target in results.
	Name string
	// Host is a DNS name or an IP literal.
	Host string
	// Port is the port to connect to.
	Port uint16
	// Pipeline is how to probe it.
	Pipeline *Pipeline
	// Attempts overrides Options.Attempts when positive.
	Attempts int
	// Timeout overrides Options.Timeout when positive.
	Timeout time.Duration
}

// Pipeline is a chain of components: resolvers (the first whose match fits
// the host answers), a dialer, and handshakes in order.
type Pipeline struct {
	Name       string
	Resolvers  []Route
	Dialer     Stage[sdk.Dialer]
	Handshakes []Stage[sdk.Handshaker]
	// AddressPolicy says which resolved addresses an attempt dials. Default
	// AddressFirst.
	AddressPolicy AddressPolicy
}

// AddressPolicy says which of the addresses a resolver returned an attempt
// dials.
type AddressPolicy string

// The address policies.
const (
	// AddressFirst dials the first address.
	AddressFirst AddressPolicy = "first"
	// AddressAll probes every address (the first MaxAddresses), each as an
	// attempt of its own: a round resolves once, then dials each address in
	// turn and runs the handshakes over it. Each address's attempt carries
	// the round's resolve phase, followed by its own phases as if they had
	// run right after the resolution, and has its own deadline. The first
	// address's attempt has the resolution's attributes; the others' say
	// "shared_with" that attempt's address instead.
	AddressAll AddressPolicy = "all"
	// AddressHappyEyeballs races connections as RFC 8305 says: addresses
	// (the first MaxAddresses) interleaved by family, IPv6 first, each connection attempt started
	// ConnectionAttemptDelay after the previous one (at once when every
	// running one has failed); the first to connect wins, the others are
	// canceled and closed. The connect phase runs from the first connection
	// attempt's start to the winner's connection and lists every attempt in
	// its attribute "happy_eyeballs".
	AddressHappyEyeballs AddressPolicy = "happy-eyeballs"
)

// AddressPolicies lists the address policies, the default first.
var AddressPolicies = []AddressPolicy{AddressFirst, AddressAll, AddressHappyEyeballs}

// ConnectionAttemptDelay is the Connection Attempt Delay of Happy Eyeballs,
// the value RFC 8305 §8 recommends.
const ConnectionAttemptDelay = 250 * time.Millisecond

// Stage is a configured component in a pipeline.
type Stage[T any] struct {
	// Name is the component block's name ("lab" for resolver "lab").
	Name string
	// Plugin is the name of the plugin that serves it; phases carry it.
	Plugin string
	// Component is the component itself.
	Component T
}

// Route is a resolver stage with the hosts it answers for.
type Route struct {
	Stage[sdk.Resolver]
	patterns []string
	match    []matcher
}

// matcher is one entry of a route's match list: a CIDR for IP literals or
// a glob for names.
type matcher struct {
	prefix netip.Prefix
	glob   string
}

// NewRoute returns a route for resolver r that answers the hosts match
// describes: CIDR prefixes ("100.64.0.0/10") match IP literals, glob
// patterns ("*.ts.net", where * matches any run of characters, dots
// included) match names, case-insensitively. An empty match answers every
// host.
func NewRoute(stage Stage[sdk.Resolver], match []string) (Route, error) {
	r := Route{Stage: stage, patterns: match}
	for _, m := range match {
		if strings.Contains(m, "/") {
			p, err := netip.ParsePrefix(m)
			if err != nil {
				return Route{}, fmt.Errorf("match %q: not a CIDR prefix: %w", m, err)
			}
			r.match = append(r.match, matcher{prefix: p.Masked()})
			continue
		}
		g := strings.TrimSuffix(strings.ToLower(m), ".")
		if _, err := path.Match(g, ""); err != nil {
			return Route{}, fmt.Errorf("match %q: bad glob pattern: %w", m, err)
		}
		r.match = append(r.match, matcher{glob: g})
	}
	return r, nil
}

// Match returns the route's match list as given to NewRoute; empty for a
// route that answers every host.
func (r *Route) Match() []string { return r.patterns }

// Matches reports whether the route answers for host.
func (r *Route) Matches(host string) bool {
	if len(r.match) == 0 {
		return true
	}
	ip, ipErr := netip.ParseAddr(host)
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, m := range r.match {
		if m.glob == "" {
			if ipErr == nil && m.prefix.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		if ipErr != nil {
			if ok, _ := path.Match(m.glob, strings.ReplaceAll(name, "/", "")); ok {
				return true
			}
		}
	}
	return false
}

// Route returns the first resolver route of the pipeline that answers for
// host, or nil. A host that CheckHost refuses has no route: no match list
// sees it.
func (p *Pipeline) Route(host string) *Route {
	if CheckHost(host) != nil {
		return nil
	}
	for i := range p.Resolvers {
		if p.Resolvers[i].Matches(host) {
			return &p.Resolvers[i]
		}
	}
	return nil
}

//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/preconnect"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/internal/lab/netlab"
	"github.com/probe-dev/probe/plugins/builtins"
)

// The preconnect measurement (issue 8, docs/preconnect.md): the first
// HTTPS request of a fresh client across the delay link, cold (DNS, TCP,
// TLS and the request: four round trips) against warm (a connection
// core/preconnect opened and handshook at the service's start-up: the
// request's one round trip), side by side in one run.

// preconnectCmd is the hidden first argument under which this command runs
// the rounds of the preconnect measurement (preconnectMain), started on the
// near side of a link: the client in a process of its own, outside the
// process that runs the link, and never built with a test binary's race
// detector.
const preconnectCmd = "preconnect-rounds"

// preconnectHCL is the warm-up's pipeline: the far lab's DNS server in
// %[1]s asked for the A record only, TCP, and TLS trusting the CA in %[2]q
// offering h2; one attempt for %[3]s port 443.
const preconnectHCL = `
run {
  attempts = 1
  timeout  = "5s"
}

resolver "far" {
  plugin      = "dns-miekg"
  servers     = [%[1]q]
  query_types = ["A"]
}

dialer "tcp" { plugin = "dial-tcp" }

handshake "tls" {
  plugin  = "tls"
  ca_file = %[2]q
  alpn    = ["h2", "http/1.1"]
}

pipeline "https" {
  resolvers  = [resolver.far]
  dialer     = dialer.tcp
  handshakes = [handshake.tls]
}

target "api" {
  host     = %[3]q
  port     = 443
  pipeline = pipeline.https
}
`

// preconnectOptions size a preconnect run.
type preconnectOptions struct {
	Delay  time.Duration // one-way delay of the link
	Rounds int           // rounds, each one cold and one warm request
	// Self is a binary of this command, built without the race detector:
	// it serves the far lab and runs the rounds.
	Self string
	Log  io.Writer // each round's times; nil for none
}

// preconnectRound is one round's times in milliseconds, as preconnectMain
// prints them.
type preconnectRound struct {
	Cold float64 `json:"cold_ms"` // the cold client's first request, body read
	Warm float64 `json:"warm_ms"` // the warm client's first request, body read
	// The cold request's DNS lookup, TCP connect and TLS handshake
	// (httptrace), and the warm-up that preceded the warm request.
	ColdDNS     float64 `json:"cold_dns_ms"`
	ColdConnect float64 `json:"cold_connect_ms"`
	ColdTLS     float64 `json:"cold_tls_ms"`
	Warmup      float64 `json:"warmup_ms"`
}

// preconnectResult is what a preconnect run measured, in milliseconds.
type preconnectResult struct {
	Rounds []preconnectRound
	// Cold and Warm are the medians of the rounds' requests; Ratio is the
	// median of the rounds' cold/warm ratios.
	Cold, Warm, Ratio float64
	// RTT is the link's round trip as measured in the same run: the median
	// of the cold requests' TCP connects, which take one round trip.
	RTT float64
	// Lateness is the link's lateness p99 during the rounds: above a few
	// hundred microseconds, the machine disturbed the run.
	Lateness time.Duration
}

// measurePreconnect builds a link with opts.Delay each way, starts the far
// lab, and runs opts.Rounds rounds of a cold and a warm first request on
// the near side.
func measurePreconnect(ctx context.Context, opts preconnectOptions) (res preconnectResult, err error) {
	link, err := netlab.Start(opts.Delay)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, link.Close()) }()
	far, err := startFarLab(link, opts.Self)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, far.close()) }()
	dir, err := os.MkdirTemp("", "probe-bench-preconnect-")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	// The cold client's resolver asks the far lab's DNS server; this
	// resolv.conf, which its process sees as /etc/resolv.conf, keeps the
	// machine's own options (search domains, ndots) out of its lookup.
	resolvConf := filepath.Join(dir, "resolv.conf")
	conf := "nameserver " + netlab.FarAddr.String() + "\noptions attempts:1 timeout:2\n"
	if err := os.WriteFile(resolvConf, []byte(conf), 0o644); err != nil {
		return res, err
	}

	cmd := exec.CommandContext(ctx, opts.Self, preconnectCmd, "-ca", far.caFile, "-n", strconv.Itoa(opts.Rounds))
	netlab.WithResolvConf(cmd, resolvConf)
	link.ResetLateness()
	out, err := nearOutput(link, cmd)
	if err != nil {
		return res, err
	}
	res.Lateness = link.Lateness().P99
	if err := json.Unmarshal(out, &res.Rounds); err != nil {
		return res, fmt.Errorf("%s output: %w", preconnectCmd, err)
	}
	if len(res.Rounds) != opts.Rounds {
		return res, fmt.Errorf("%s printed %d rounds, want %d", preconnectCmd, len(res.Rounds), opts.Rounds)
	}
	var cold, warm, ratio, connect []float64
	for i, r := range res.Rounds {
		if r.Warm <= 0 {
			return res, fmt.Errorf("round %d: warm request took %.3f ms", i+1, r.Warm)
		}
		cold, warm, connect = append(cold, r.Cold), append(warm, r.Warm), append(connect, r.ColdConnect)
		ratio = append(ratio, r.Cold/r.Warm)
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "preconnect round %d: cold %.1f ms (dns %.1f, connect %.1f, tls %.1f), warm %.1f ms (warm-up %.1f ms), ratio %.2f\n",
				i+1, r.Cold, r.ColdDNS, r.ColdConnect, r.ColdTLS, r.Warm, r.Warmup, r.Cold/r.Warm)
		}
	}
	res.Cold, res.Warm, res.Ratio, res.RTT = medianOf(cold), medianOf(warm), medianOf(ratio), medianOf(connect)
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "preconnect: link lateness p99 %v\n", res.Lateness)
	}
	return res, nil
}

// preconnectMain runs n rounds, each a cold and a warm first request to
// https://netlab.Host/ (which of the two goes first alternates), and prints
// their times as a JSON list of preconnectRound.
func preconnectMain(args []string) int {
	fs := flag.NewFlagSet(preconnectCmd, flag.ContinueOnError)
	ca := fs.String("ca", "", "PEM file of the far lab's CA")
	n := fs.Int("n", 15, "rounds")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := func() error {
		roots, err := readRoots(*ca)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "probe-bench-preconnect-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		pipeline := filepath.Join(dir, "preconnect.hcl")
		dnsServer := netip.AddrPortFrom(netlab.FarAddr, 53).String()
		if err := os.WriteFile(pipeline, []byte(fmt.Sprintf(preconnectHCL, dnsServer, *ca, netlab.Host)), 0o644); err != nil {
			return err
		}
		rounds := make([]preconnectRound, 0, *n)
		for i := range *n {
			var r preconnectRound
			steps := []func(context.Context) error{
				func(ctx context.Context) error { return coldRequest(ctx, roots, &r) },
				func(ctx context.Context) error { return warmRequest(ctx, pipeline, roots, &r) },
			}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := step(ctx)
				cancel()
				if err != nil {
					return fmt.Errorf("round %d: %w", i+1, err)
				}
			}
			rounds = append(rounds, r)
		}
		return json.NewEncoder(os.Stdout).Encode(rounds)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, preconnectCmd+":", err)
		return 1
	}
	return 0
}

// preconnectURL is what both clients ask for.
var preconnectURL = "https://" + netlab.Host + "/"

// coldRequest times the first request of a fresh client that resolves
// netlab.Host by DNS at the far lab's server, connects and handshakes, and
// sets r's cold times.
func coldRequest(ctx context.Context, roots *x509.CertPool, r *preconnectRound) error {
	dnsServer := netip.AddrPortFrom(netlab.FarAddr, 53).String()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsServer) // udp, unless an answer comes truncated
	}}
	tr := &http.Transport{
		DialContext:       (&net.Dialer{Resolver: resolver}).DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	var dnsStart, connStart, tlsStart time.Time
	trace := &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { dnsStart = time.Now() },
		DNSDone:           func(httptrace.DNSDoneInfo) { r.ColdDNS = sdk.Milliseconds(time.Since(dnsStart)) },
		ConnectStart:      func(string, string) { connStart = time.Now() },
		ConnectDone:       func(string, string, error) { r.ColdConnect = sdk.Milliseconds(time.Since(connStart)) },
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { r.ColdTLS = sdk.Milliseconds(time.Since(tlsStart)) },
	}
	d, err := timedGet(httptrace.WithClientTrace(ctx, trace), &http.Client{Transport: tr})
	if err != nil {
		return fmt.Errorf("cold request: %w", err)
	}
	r.Cold = sdk.Milliseconds(d)
	return nil
}

// warmRequest warms netlab.Host with core/preconnect running pipeline,
// waits for the warm-up to end (a service's start-up), then times the first
// request of a client on the pool's transport, and sets r's warm times. It
// fails unless the warm connection served the request over HTTP/2.
func warmRequest(ctx context.Context, pipeline string, roots *x509.CertPool, r *preconnectRound) error {
	start := time.Now()
	pool, err := preconnect.StartFile(ctx, pipeline, config.Options{Plugins: builtins.Plugins()}, preconnect.Options{
		TLSConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}},
	})
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	defer pool.Close()
	res, err := pool.Wait(ctx)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	r.Warmup = sdk.Milliseconds(time.Since(start))
	if res.Summary.OK != 1 {
		return fmt.Errorf("warm-up failed: %v", res.Summary.FailuresByClass)
	}
	tr := pool.Transport()
	defer tr.CloseIdleConnections()
	d, err := timedGet(ctx, &http.Client{Transport: tr})
	if err != nil {
		return fmt.Errorf("warm request: %w", err)
	}
	if hits, misses := pool.Stats(); hits != 1 || misses != 0 {
		return fmt.Errorf("warm request: %d warm connections used and %d dials anew, want the warm connection used", hits, misses)
	}
	r.Warm = sdk.Milliseconds(d)
	return nil
}

// timedGet times a GET of preconnectURL with c, from just before the call
// to the body fully read, and checks that the answer is 200 over HTTP/2.
func timedGet(ctx context.Context, c *http.Client) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, preconnectURL, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	d := time.Since(start)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("GET %s: read the body: %w", preconnectURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", preconnectURL, resp.Status)
	}
	if resp.Proto != "HTTP/2.0" {
		return 0, fmt.Errorf("GET %s: answered over %s, want HTTP/2.0", preconnectURL, resp.Proto)
	}
	return d, nil
}

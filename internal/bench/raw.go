//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/zclconf/go-cty/cty"
)

// The reference: what a plain Go program does for the same work, with net,
// crypto/tls and miekg/dns's message packing; the accuracy loop also
// verifies and warms up as probe does (plainLoopMain).

// rawTimes are one plain attempt's phase durations.
type rawTimes struct{ resolve, connect, tls time.Duration }

// rawAttempt resolves host's A record by one UDP exchange with server,
// connects to the address on port and runs a TLS handshake verifying host
// against roots, timing each step, then closes the connection. Sockets are created on the calling
// thread, so in the network namespace it is in. With remember, a chain
// verified once is not verified again (sdk.VerifyPeer, as probe's tls
// plugin verifies), the server's signature still checked on every
// handshake; without, crypto/tls verifies every chain, as a plain program
// does.
func rawAttempt(ctx context.Context, server netip.AddrPort, host string, port uint16, roots *x509.CertPool, remember bool) (rawTimes, error) {
	var t rawTimes
	start := time.Now()
	addr, err := exchangeA(ctx, server, host)
	t.resolve = time.Since(start)
	if err != nil {
		return t, err
	}
	var d net.Dialer
	start = time.Now()
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, port).String())
	t.connect = time.Since(start)
	if err != nil {
		return t, err
	}
	cfg := &tls.Config{ServerName: host, RootCAs: roots}
	if remember {
		cfg = &tls.Config{ServerName: host, InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := sdk.VerifyPeer(cs.PeerCertificates, host, roots)
			return err
		}}
	}
	tc := tls.Client(c, cfg)
	start = time.Now()
	err = tc.HandshakeContext(ctx)
	t.tls = time.Since(start)
	if err != nil {
		c.Close()
		return t, fmt.Errorf("tls handshake with %s: %w", c.RemoteAddr(), err)
	}
	return t, tc.Close() // with a close_notify, as probe closes its connections
}

// exchangeA asks server for the A record of host over UDP and returns the
// first address of the answer.
func exchangeA(ctx context.Context, server netip.AddrPort, host string) (netip.Addr, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server.String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	q, err := new(dns.Msg).SetQuestion(dns.Fqdn(host), dns.TypeA).Pack()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pack query for %s: %w", host, err)
	}
	if _, err := c.Write(q); err != nil {
		return netip.Addr{}, fmt.Errorf("query %s: %w", server, err)
	}
	buf := make([]byte, dns.MinMsgSize)
	n, err := c.Read(buf)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("query %s: %w", server, err)
	}
	var r dns.Msg
	if err := r.Unpack(buf[:n]); err != nil {
		return netip.Addr{}, fmt.Errorf("answer from %s: %w", server, err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A.To4())
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("answer from %s for %s: no A record (rcode %s)", server, host, dns.RcodeToString[r.Rcode])
}

// warmAsProbe readies the process for handshakes as probe's tls plugin
// readies probe's: it builds one of the plugin's handshakers, trusting
// caFile, which runs the plugin's warm-up (plugins/tls/warm.go).
func warmAsProbe(caFile string) error {
	p := builtins.Plugins()["tls"]
	cfg, err := p.HandshakeSchema.Config(map[string]cty.Value{"ca_file": cty.StringVal(caFile)})
	if err != nil {
		return fmt.Errorf("warm up as probe's tls plugin: %w", err)
	}
	if _, err := p.NewHandshaker(cfg); err != nil {
		return fmt.Errorf("warm up as probe's tls plugin: %w", err)
	}
	return nil
}

// plainLoopCmd is the hidden first argument under which this command runs
// the plain loop in a process of its own (plainLoopMain), so that it is
// compared with probe process for process, and never built with the race
// detector of a test binary.
const plainLoopCmd = "plain-loop"

// plainTimes are one plain attempt's phase durations in milliseconds, as
// plainLoopMain prints them.
type plainTimes struct {
	Resolve float64 `json:"resolve_ms"`
	Connect float64 `json:"connect_ms"`
	TLS     float64 `json:"tls_ms"`
}

// plainLoopMain runs n plain attempts one after another and prints their
// times as a JSON list.
func plainLoopMain(args []string) int {
	fs := flag.NewFlagSet(plainLoopCmd, flag.ContinueOnError)
	server := fs.String("server", "", "the DNS server to ask, address:port")
	host := fs.String("host", "", "the name to resolve and verify")
	port := fs.Uint("port", 443, "the TLS server's port")
	ca := fs.String("ca", "", "PEM file of the CA to trust")
	n := fs.Int("n", 1, "attempts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	err := func() error {
		dnsAddr, err := netip.ParseAddrPort(*server)
		if err != nil {
			return fmt.Errorf("-server: %w", err)
		}
		roots, err := readRoots(*ca)
		if err != nil {
			return err
		}
		times := make([]plainTimes, 0, *n)
		// It starts as warm as probe's first attempt: the tls plugin's
		// warm-up, a handshake in memory and a collection, which building
		// one of its handshakers runs, before any is timed. Without it,
		// on 2 cores beside stress-ng (--cpu 2, --cache 2) or other
		// packages' tests, probe's tls phase read 0.13-0.25 ms shorter
		// than the reference's by the median of 60-72 samples, and -0.30
		// to -0.39 ms in one CI run, failing TestAccuracy; with it, -0.14
		// to +0.08 ms. The difference was the reference's own cold start
		// (plugins/tls/warm.go says what one costs), not time probe left
		// out.
		if err := warmAsProbe(*ca); err != nil {
			return err
		}
		for range *n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// The reference of the accuracy measurement does the work
			// probe does: it remembers a chain it verified.
			t, err := rawAttempt(ctx, dnsAddr, *host, uint16(*port), roots, true)
			cancel()
			if err != nil {
				return err
			}
			times = append(times, plainTimes{sdk.Milliseconds(t.resolve), sdk.Milliseconds(t.connect), sdk.Milliseconds(t.tls)})
		}
		return json.NewEncoder(os.Stdout).Encode(times)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, plainLoopCmd+":", err)
		return 1
	}
	return 0
}

// readRoots reads the PEM certificates of path into a pool.
func readRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return roots, nil
}

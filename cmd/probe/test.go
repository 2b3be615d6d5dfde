package main

import (
	"errors"
	"fmt"

	"github.com/probe-dev/probe/core/engine"
	"github.com/spf13/cobra"
)

func newTestCmd() *cobra.Command {
	var (
		dns     string
		tlsOpts tlsOptions
		isolate bool
	)
	rf := runFlags{output: "waterfall", attempts: 1, timeout: engine.DefaultTimeout}
	c := &cobra.Command{
		Use:   "test URL | HOST:PORT | HOST PORT [tcp|http|https|icmp|grpc|grpcs|quic|h3|ssh|dns-udp|smtp|imap|pop3|postgres]",
		Short: "Probe one host and draw its phases as a waterfall",
		Long: `Probe one host with an implied pipeline: the system resolver (or --dns
SERVER) and a TCP connect; for https then a TLS handshake offering h2 and
http/1.1 and a GET over it (HTTP/2 when the server chose h2), for http a GET
over TCP. A status outside 200-399 fails the http phase. icmp sends one
ICMP echo request an attempt instead of connecting (the port is required
and unused). grpc calls grpc.health.v1.Health/Check over TCP, grpcs over a
TLS handshake offering h2; SERVING passes. quic makes a QUIC handshake
(offering h3; --sni, --ca-file, --insecure and --alpn apply to it), h3
then sends a GET over HTTP/3. For ssh, the SSH version and key exchange up
to the server's host key, whose type and SHA256 fingerprint it reports (no
authentication). For dns-udp, a DNS query for the root's SOA record in one
UDP datagram, whose reply must carry its ID, whatever its rcode; a closed
port fails as udp.refused. For smtp, imap, pop3 and postgres, the protocol
up to its upgrade to TLS (STARTTLS, STLS, SSLRequest), then the TLS
handshake, as for https but offering no ALPN protocol unless --alpn says.

The host is a URL (https://host:8443/path?q: the protocol, port and the
path the GET asks for; the port defaults to 443 for https, 80 for http),
host:port[:proto], or HOST PORT [PROTO]. IPv6 addresses are bracketed where
a port follows ([::1]:8443). Without a protocol, port 443 is https and any
other port tcp; the waterfall of a tcp probe is then followed by a hint, on
stderr, of how to ask for TLS and HTTP.

The phases are drawn on one time axis, coloured on a terminal (NO_COLOR
turns colour off), with what each phase learned below it.`,
		Example: `  probe test example.com 443
  probe test https://example.com/healthz
  probe test http://127.0.0.1:8080/
  probe test db.internal:5432
  probe test 192.0.2.1 1 icmp --attempts 5
  probe test api.internal 50051 grpcs --ca-file ca.pem
  probe test example.com 443 h3
  probe test bastion.internal 22 ssh
  probe test 9.9.9.9 53 dns-udp
  probe test mail.example.com 587 smtp
  probe test 127.0.0.1 8443 https --ca-file lab-ca.pem --sni api.probe.test
  probe test https://api.probe.test:8443/ --dns 127.0.0.1:5353 --attempts 5
  probe test db.internal 5432 -o json | jq '.targets[0] | .facts, .attempts[0].phases'`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(c *cobra.Command, args []string) error {
			a, guessed, err := parseTestArgs(args)
			if err != nil {
				return &exitError{code: exitUsage, msg: err.Error()}
			}
			if err := rf.validate(c); err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			pl := newLoader(isolate)
			defer pl.Close()
			p, err := impliedPipeline(pl, a, tlsOpts, dns)
			if err != nil {
				return err
			}
			t := &engine.Target{Name: a.name, Host: a.host, Port: a.port, Pipeline: p}
			err = run(ctx, c.OutOrStdout(), "", "", rf.options(engine.Options{}, nil), rf.output, []*engine.Target{t})
			var ee *exitError
			if guessed && a.proto == "tcp" && (rf.output == "waterfall" || rf.output == "table") &&
				(err == nil || errors.As(err, &ee) && ee.code == exitFailed) {
				fmt.Fprintln(c.ErrOrStderr(), a.tlsHint())
			}
			return err
		},
	}
	c.Flags().DurationVar(&rf.timeout, "timeout", rf.timeout, "deadline of each attempt")
	c.Flags().IntVarP(&rf.attempts, "attempts", "n", rf.attempts, "attempts")
	c.Flags().StringVar(&dns, "dns", "", "ask this DNS server (ip:port) instead of the system resolver")
	rf.registerOutput(c, rf.output)
	c.Flags().StringVar(&tlsOpts.serverName, "sni", "", "TLS server name (default: HOST)")
	c.Flags().StringVar(&tlsOpts.caFile, "ca-file", "", "PEM file of trusted roots (default: the system's)")
	c.Flags().BoolVarP(&tlsOpts.insecure, "insecure", "k", false, "do not fail on an untrusted certificate (it is still checked and reported)")
	c.Flags().BoolVar(&isolate, "isolate", false, "run the built-in plugins out of process, over the plugin protocol")
	c.Flags().StringSliceVar(&tlsOpts.alpn, "alpn", nil, "ALPN protocols to offer (default h2,http/1.1 for https, none for the STARTTLS protocols)")
	return c
}

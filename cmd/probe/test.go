package main

import (
	"github.com/probe-dev/probe/core/engine"
	"github.com/spf13/cobra"
)

func newTestCmd() *cobra.Command {
	var (
		timeout  = engine.DefaultTimeout
		attempts int
		dns      string
		output   string
		tlsOpts  tlsOptions
		isolate  bool
	)
	c := &cobra.Command{
		Use:   "test HOST PORT [tcp|http|https]",
		Short: "Probe one host and draw its phases as a waterfall",
		Long: `Probe one host with an implied pipeline: the system resolver (or --dns
SERVER) and a TCP connect; for https then a TLS handshake offering h2 and
http/1.1 and a GET / over it (HTTP/2 when the server chose h2), for http a
GET / over TCP. The protocol defaults to https on port 443 and tcp elsewhere.
A status outside 200-399 fails the http phase.

The phases are drawn on one time axis, coloured on a terminal (NO_COLOR
turns colour off), with what each phase learned below it.`,
		Example: `  probe test example.com 443
  probe test example.com 80 http
  probe test 127.0.0.1 8443 https --ca-file lab-ca.pem --sni api.probe.test
  probe test api.probe.test 8443 https --dns 127.0.0.1:5353 --attempts 5
  probe test db.internal 5432 -o json | jq '.targets[0].attempts[0].phases'`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(c *cobra.Command, args []string) error {
			port, err := parsePort(args[1])
			if err != nil {
				return &exitError{code: exitUsage, msg: err.Error()}
			}
			a := adHoc{host: args[0], port: port, proto: "tcp"}
			if port == 443 {
				a.proto = "https"
			}
			if len(args) == 3 {
				a.proto = args[2]
			}
			if err := a.checkProto(); err != nil {
				return &exitError{code: exitUsage, msg: err.Error()}
			}
			rf := runFlags{output: output}
			if err := rf.validate(); err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			pl := &plugins{log: logger(), isolate: isolate}
			defer pl.Close()
			p, err := impliedPipeline(pl, a.proto, tlsOpts, dns)
			if err != nil {
				return err
			}
			t := &engine.Target{Name: args[0], Host: a.host, Port: a.port, Pipeline: p}
			return run(ctx, c.OutOrStdout(), "", engine.Options{Attempts: attempts, Timeout: timeout}, output, []*engine.Target{t})
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", timeout, "deadline of each attempt")
	c.Flags().IntVarP(&attempts, "attempts", "n", 1, "attempts")
	c.Flags().StringVar(&dns, "dns", "", "ask this DNS server (ip:port) instead of the system resolver")
	c.Flags().StringVarP(&output, "output", "o", "waterfall", "output format: waterfall, table, json, jsonl or prometheus")
	c.Flags().StringVar(&tlsOpts.serverName, "sni", "", "TLS server name (default: HOST)")
	c.Flags().StringVar(&tlsOpts.caFile, "ca-file", "", "PEM file of trusted roots (default: the system's)")
	c.Flags().BoolVarP(&tlsOpts.insecure, "insecure", "k", false, "do not fail on an untrusted certificate (it is still checked and reported)")
	c.Flags().BoolVar(&isolate, "isolate", false, "run the built-in plugins out of process, over the plugin protocol")
	c.Flags().StringSliceVar(&tlsOpts.alpn, "alpn", nil, "ALPN protocols to offer (default h2,http/1.1)")
	return c
}

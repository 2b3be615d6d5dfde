package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/probe-dev/probe/examples"
	"github.com/probe-dev/probe/internal/lab"
	"github.com/spf13/cobra"
)

// demoFile is the embedded pipeline `probe demo` runs.
const demoFile = "lab.hcl"

func newDemoCmd() *cobra.Command {
	var rf runFlags
	var ff fileFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run examples/lab.hcl against a loopback lab, no network needed",
		Long: `Start the loopback lab (a DNS server for probe.test, TCP and TLS servers with a
generated CA, some slow, some broken on purpose) and run the embedded
examples/lab.hcl against it. The broken targets fail on purpose, one per
failure class; the demo exits 0 when the run completed.`,
		Example: "  probe demo\n  probe demo -o json --attempts 20",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := rf.validate(c); err != nil {
				return err
			}
			src, err := examples.FS.ReadFile(demoFile)
			if err != nil {
				return fmt.Errorf("read embedded %s: %w", demoFile, err)
			}
			ctx, stop := interruptible()
			defer stop()
			l, err := lab.Start()
			if err != nil {
				return err
			}
			defer l.Close()
			fmt.Fprintf(os.Stderr, "probe demo: lab DNS on %s, TLS on %s; running examples/%s\n\n", l.DNS.Addr, l.TLS.Addr, demoFile)
			file, pl, err := ff.load("examples/"+demoFile, src, l.Vars())
			if err != nil {
				return err
			}
			defer pl.Close()
			defer file.Close()
			err = run(ctx, c.OutOrStdout(), "examples/"+demoFile, file.Vantage, rf.options(file.Options, file.Targets), rf.output, file.Targets)
			var ee *exitError
			if errors.As(err, &ee) && ee.code == exitFailed {
				return nil // the broken targets fail by design
			}
			return err
		},
	}
	rf.register(c)
	c.Flags().BoolVar(&ff.isolate, "isolate", false, "run the built-in plugins out of process, over the plugin protocol")
	return c
}

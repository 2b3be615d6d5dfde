package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/probe-dev/probe/core/importer/blackbox"
)

func newImportCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "import",
		Short:   "Write a pipeline file from another prober's configuration",
		Example: `  probe import blackbox /etc/prometheus/blackbox.yml -o blackbox.hcl`,
	}
	c.AddCommand(newImportBlackboxCmd())
	return c
}

func newImportBlackboxCmd() *cobra.Command {
	var out, prom string
	c := &cobra.Command{
		Use:   "blackbox FILE.yml",
		Short: "Write a pipeline file from a blackbox_exporter configuration",
		Long: `Write a pipeline file from a blackbox_exporter configuration (blackbox.yml):
each module of prober http, tcp or dns becomes a pipeline of the built-in
plugins (an http module one for https:// targets, with tls, and one for
http:// targets that need it). With --prometheus, the scrape jobs of a
prometheus.yml that ask /probe for a module become target blocks.

Every option that probe cannot express, or expresses differently, is
listed on stderr with its file and line and why: nothing is dropped
silently. A password or bearer token becomes a sensitive variable without
a value: set it with PROBE_VAR_NAME (the list is printed) before probe
validate, run or serve.

Exit status: 0 when the file was written (notes or not), 2 when FILE.yml
is not a blackbox configuration.`,
		Example: `  probe import blackbox /etc/prometheus/blackbox.yml -o blackbox.hcl
  probe import blackbox blackbox.yml --prometheus prometheus.yml -o blackbox.hcl
  PROBE_VAR_http_basic_auth_password=... probe validate blackbox.hcl`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return importBlackbox(args[0], prom, out)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the pipeline file here (default: stdout)")
	c.Flags().StringVar(&prom, "prometheus", "", "a prometheus.yml whose /probe scrape jobs become targets")
	return c
}

func importBlackbox(path, prom, out string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return &exitError{code: exitUsage, msg: err.Error()}
	}
	var targets []blackbox.Target
	var notes []blackbox.Note
	if prom != "" {
		psrc, err := os.ReadFile(prom)
		if err != nil {
			return &exitError{code: exitUsage, msg: err.Error()}
		}
		if targets, notes, err = blackbox.PrometheusTargets(prom, psrc); err != nil {
			return &exitError{code: exitUsage, msg: err.Error()}
		}
	}
	res, err := blackbox.Convert(path, src, targets)
	if err != nil {
		return &exitError{code: exitUsage, msg: err.Error()}
	}
	if out == "" {
		if _, err := os.Stdout.Write(res.HCL); err != nil {
			return err
		}
	} else if err := os.WriteFile(out, res.HCL, 0o644); err != nil {
		return &exitError{code: exitUsage, msg: err.Error()}
	}
	for _, n := range append(res.Notes, notes...) {
		fmt.Fprintln(os.Stderr, "note:", n)
	}
	dest := out
	if dest == "" {
		dest = "stdout"
	}
	fmt.Fprintf(os.Stderr, "probe import blackbox: %d pipelines, %d targets, %d notes written to %s\n",
		len(res.Pipelines), len(targets), len(res.Notes)+len(notes), dest)
	for _, s := range res.Secrets {
		fmt.Fprintf(os.Stderr, "set the sensitive variable %s: PROBE_VAR_%s=... or -var %s=...\n", s, s, s)
	}
	return nil
}

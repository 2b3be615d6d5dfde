package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/conformance"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/spf13/cobra"
)

// builtinsCheck is the check file of the built-ins, for `probe plugins
// check --isolate`.
//
//go:embed builtins_check.hcl
var builtinsCheck []byte

func newPluginsCheckCmd() *cobra.Command {
	var checkFile, pin string
	var isolate bool
	c := &cobra.Command{
		Use:   "check [BINARY]",
		Short: "Run the conformance checks against a plugin binary",
		Long: `Start a plugin binary as probe starts it and check every component it serves:
its description and schema, a configuration accepted and a bad one refused,
a resolve against the check's DNS server, a dial that hands back a socket, a
handshake on a handed socket timed against a server that holds its answer,
failures as data, the deadline, cancellation, no socket kept, recovery after
a crash, and an exit when asked. One row per check, a line of explanation
per failure; the exit status is 1 when any check failed.

--config names a check file: each component's attributes, a configuration it
must refuse, the server a handshake speaks to (docs/plugins.md). --isolate,
without BINARY, checks the built-in plugins served by probe itself.`,
		Example: `  probe plugins check ./bin/probe-plugin-banner --config examples/plugins/banner/check.hcl
  probe plugins check --isolate`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var bin pluginhost.Binary
			var src []byte
			name := checkFile
			switch {
			case isolate && len(args) == 0:
				self, err := os.Executable()
				if err != nil {
					return &exitError{code: exitUsage, msg: err.Error()}
				}
				bin = pluginhost.Binary{Name: "builtin", Path: self, Args: []string{serveBuiltinsCmd}}
				src, name = builtinsCheck, "builtins_check.hcl"
			case len(args) == 1 && !isolate:
				path, err := filepath.Abs(args[0])
				if err == nil {
					err = pluginhost.CheckBinary(path)
				}
				if err != nil {
					return &exitError{code: exitUsage, msg: err.Error()}
				}
				bin = pluginhost.Binary{Name: strings.TrimPrefix(filepath.Base(path), pluginhost.BinaryPrefix), Path: path, SHA256: pin}
			default:
				return &exitError{code: exitUsage, msg: "give a plugin binary, or --isolate alone for the built-ins\nSee 'probe plugins check --help'."}
			}
			if checkFile != "" {
				var err error
				if src, err = os.ReadFile(checkFile); err != nil {
					return &exitError{code: exitUsage, msg: err.Error()}
				}
			}
			// The check kills the plugin on purpose; its logs are for -v.
			log := hclog.NewNullLogger()
			if verbosity > 0 {
				log = logger()
			}
			results, err := conformance.Run(c.Context(), conformance.Options{Binary: bin, CheckFile: src, CheckFileName: name, Log: log})
			if err != nil {
				return &exitError{code: exitUsage, msg: err.Error()}
			}
			failed, err := conformance.Write(c.OutOrStdout(), results)
			if err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: exitFailed, msg: fmt.Sprintf("%d of %d checks failed", failed, len(results))}
			}
			return nil
		},
	}
	c.Flags().StringVar(&checkFile, "config", "", "check `FILE`: how each component is configured and checked")
	c.Flags().BoolVar(&isolate, "isolate", false, "check the built-in plugins, served by probe out of process")
	c.Flags().StringVar(&pin, "sha256", "", "the binary's sha256 pin, checked before it runs, as a plugin block's")
	_ = c.MarkFlagFilename("config", "hcl")
	return c
}

// Command probe measures networks: for every target it runs a pipeline of
// plugins (resolve → dial → handshakes) and reports how long each phase took.
//
//	probe run pipeline.hcl        run a pipeline file (or PROBE_TARGETS without one)
//	probe test URL                probe one host ad hoc, as a waterfall (or HOST:PORT, HOST PORT [proto])
//	probe validate pipeline.hcl   check a file
//	probe plugins                 list the plugins and what they accept
//	probe demo                    run against a loopback lab
//	probe serve pipeline.hcl      serve it to Prometheus (/probe, /metrics)
//	probe completion bash         print a shell completion script
//	probe version                 print the version, commit, Go version and built-in plugins
package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK          = 0   // every target ok
	exitFailed      = 1   // some target failed
	exitUsage       = 2   // usage or configuration error
	exitInterrupted = 130 // Ctrl-C or SIGTERM; what finished was printed
)

// exitError carries an exit code out of a command. Its message, if any, has
// not been printed yet.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// verbosity is the number of -v flags.
var verbosity int

// logger returns the process's logger for stderr, at the level -v asks
// for. It is one logger, so that `probe serve` counts every line written
// (plugin restarts included) on /metrics.
var logger = sync.OnceValue(func() hclog.Logger {
	level := hclog.Warn
	switch {
	case verbosity >= 2:
		level = hclog.Trace
	case verbosity == 1:
		level = hclog.Debug
	}
	return hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "probe", Level: level, Output: os.Stderr,
		Color: hclog.AutoColor, ColorHeaderOnly: true})
})

func main() {
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := newRoot()
	root.SetArgs(longFlags(args))
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "Error:", ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "Error:", err)
		return exitUsage
	}
}

// longFlags rewrites Terraform's single-dash -var and -var-file, which
// pflag would read as shorthand flags, to their double-dash form.
func longFlags(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if name, _, _ := strings.Cut(a, "="); name == "-var" || name == "-var-file" {
			out[i] = "-" + a
		}
	}
	return out
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "probe",
		Short: "Measure DNS, TCP, TLS and HTTP, phase by phase",
		Long: `probe runs a pipeline of plugins for every target (resolve → dial → handshakes),
measures each phase where the work happens, and aggregates the timings.

Exit status: 0 when every target is ok, 1 when any failed, 2 for usage or
configuration errors, 130 when interrupted.`,
		Example: `  probe demo                          # a loopback lab, no network needed
  probe test example.com 443          # one host as a waterfall
  probe test https://example.com/up   # the same for a URL, its port and path
  probe run pipeline.hcl              # every target of a file, as a table
  probe serve pipeline.hcl            # for Prometheus: /probe?target=NAME
  source <(probe completion bash)     # complete commands, files and flags`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionText(buildInfo()),
	}
	root.SetVersionTemplate("{{.Version}}")
	root.PersistentFlags().CountVarP(&verbosity, "verbose", "v", "log on stderr: -v for every attempt, -vv for more")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%v\nSee '%s --help'.", err, c.CommandPath())}
	})
	root.AddCommand(newRunCmd(), newValidateCmd(), newTestCmd(), newPluginsCmd(), newDemoCmd(), newServeCmd(),
		newCompletionCmd(), newVersionCmd(), newServeBuiltinsCmd(), newImportCmd())
	completeArgs(root)
	return root
}

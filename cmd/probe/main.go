// Command probe measures networks: for every target it runs a pipeline of
// plugins (resolve → dial → handshakes) and reports how long each phase took.
//
//	probe run pipeline.hcl        run a pipeline file (or PROBE_TARGETS without one)
//	probe test URL                probe one host ad hoc, as a waterfall (or HOST:PORT, HOST PORT [proto])
//	probe validate pipeline.hcl   check a file
//	probe plugins                 list the plugins and what they accept
//	probe plugins check BINARY    run the conformance checks against a plugin binary
//	probe plugins new NAME        write a Go plugin that passes them
//	probe demo                    run against a loopback lab
//	probe serve pipeline.hcl      serve it to Prometheus (/probe, /metrics)
//	probe completion bash         print a shell completion script
//	probe version                 print the version, commit, Go version and built-in plugins
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/engine"
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
// (plugin restarts included) on /metrics, and it writes to stderr, which
// redacts the secrets of the files loaded: the lines of probe's own code
// carry redacted values already, but a plugin's lines, which probe re-logs,
// may carry anything the plugin was configured with.
var logger = sync.OnceValue(func() hclog.Logger {
	level := hclog.Warn
	switch {
	case verbosity >= 2:
		level = hclog.Trace
	case verbosity == 1:
		level = hclog.Debug
	}
	return hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "probe", Level: level, Output: stderr,
		Color: hclog.AutoColor, ColorHeaderOnly: true})
})

// stderr is the process's standard error for logs and errors: each write
// (a log line, an error) redacted of the secrets of every file loaded so
// far (logSecrets), as a run's attempts are.
var stderr = &redactingWriter{w: os.Stderr}

// logSecrets has stderr redact secrets (a loaded file's) from now on, and
// the secrets it was given before.
func logSecrets(secrets []string) { stderr.add(secrets) }

// redactingWriter writes to w with secrets redacted from each write, which
// is whole: hclog writes each line at once.
type redactingWriter struct {
	w  io.Writer
	mu sync.Mutex // guards secrets and r
	// secrets are every file's so far: under probe serve, the probes of
	// the previous file may still log after a reload.
	secrets []string
	r       *engine.Redactor
}

func (w *redactingWriter) add(secrets []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.secrets)
	for _, s := range secrets {
		if !slices.Contains(w.secrets, s) {
			w.secrets = append(w.secrets, s)
		}
	}
	if len(w.secrets) > n {
		w.r = engine.NewRedactor(w.secrets)
	}
}

func (w *redactingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	r := w.r
	w.mu.Unlock()
	if r == nil {
		return w.w.Write(p)
	}
	if _, err := io.WriteString(w.w, r.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SupportsColor tells hclog whether its lines may be coloured: they are
// written to a terminal that may show colour.
func (w *redactingWriter) SupportsColor() bool { return colorful(os.Stderr) }

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
			fmt.Fprintln(stderr, "Error:", ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintln(stderr, "Error:", err)
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
		newCompletionCmd(), newVersionCmd(), newServeBuiltinsCmd())
	completeArgs(root)
	return root
}

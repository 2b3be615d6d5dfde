package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/exporter"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/report"
	"github.com/probe-dev/probe/core/sink"
	"github.com/probe-dev/probe/core/status"
	"github.com/spf13/cobra"
)

// fileFlags are the flags that feed a pipeline file's variables.
type fileFlags struct {
	vars     []string
	varFiles []string
	isolate  bool
	vantage  string
	// otlpEndpoint is --otlp-endpoint, of the commands that export to OpenTelemetry.
	otlpEndpoint string
	// streamTargets leaves the targets of targets files to be read as a run
	// goes (config.Options.StreamTargets): probe run's and validate's.
	streamTargets bool
}

func (f *fileFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.vars, "var", nil, "set a variable: -var name=value (repeatable)")
	c.Flags().StringArrayVar(&f.varFiles, "var-file", nil, "read variables from an HCL file of name = value lines (repeatable)")
	c.Flags().BoolVar(&f.isolate, "isolate", false, "run the built-in plugins out of process, over the plugin protocol")
}

// registerVantage adds --vantage, for the commands whose outputs carry it.
func (f *fileFlags) registerVantage(c *cobra.Command) {
	c.Flags().StringVar(&f.vantage, "vantage", "",
		"name where this process probes from (a region, a network): a vantage label and field on every output; default $PROBE_VANTAGE, else the file's vantage attribute")
}

// applyVantage sets file's vantage from --vantage, else PROBE_VANTAGE,
// when either is set: they name the process, which outranks the file.
func (f *fileFlags) applyVantage(file *config.File) error {
	v, from := f.vantage, "--vantage"
	if v == "" {
		v, from = os.Getenv("PROBE_VANTAGE"), "PROBE_VANTAGE"
	}
	if v == "" {
		return nil
	}
	if err := config.CheckVantage(v); err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("invalid %s: %v", from, err)}
	}
	file.Vantage = v
	return nil
}

// load loads path (or src, when not nil) and prints its diagnostics on
// stderr. A file with errors is an exitError. The caller closes the file,
// then the plugins, which own the plugin processes the file started.
func (f *fileFlags) load(path string, src []byte, extraVars map[string]string) (*config.File, *pluginhost.Loader, error) {
	return f.loadTo(os.Stderr, path, src, extraVars)
}

// loadTo is load printing the diagnostics to w, in colour when w is a
// terminal that may show it (colorful).
func (f *fileFlags) loadTo(w io.Writer, path string, src []byte, extraVars map[string]string) (*config.File, *pluginhost.Loader, error) {
	vars := map[string]string{}
	for k, v := range extraVars {
		vars[k] = v
	}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, &exitError{code: exitUsage, msg: fmt.Sprintf("invalid -var %q: expected name=value", kv)}
		}
		vars[k] = v
	}
	pl := newLoader(f.isolate)
	builtin, err := pl.Builtins()
	if err != nil {
		_ = pl.Close()
		return nil, nil, err
	}
	l := config.NewLoader(config.Options{Plugins: builtin, Loader: pl, Vars: vars, VarFiles: f.varFiles, StreamTargets: f.streamTargets})
	var file *config.File
	var diags hcl.Diagnostics
	if src != nil {
		file, diags = l.LoadSource(path, src)
	} else {
		file, diags = l.LoadFile(path)
	}
	if len(diags) > 0 {
		_ = l.WriteDiagnostics(w, diags, 100, colorful(w))
	}
	if diags.HasErrors() {
		_ = pl.Close()
		return nil, nil, &exitError{code: exitUsage}
	}
	if err := f.applyVantage(file); err != nil {
		_ = file.Close()
		_ = pl.Close()
		return nil, nil, err
	}
	logSecrets(file.Options.Secrets)
	return file, pl, nil
}

// runFlags override a file's run block and its targets' own attempts and
// timeout, and choose the output.
type runFlags struct {
	output      string
	attempts    int
	concurrency int
	sequential  bool
	timeout     time.Duration
	interval    time.Duration
}

// output is an output format, a value of -o: the sink that writes it.
type output struct {
	name string
	// sink returns the sink writing the format to w, for a run of the
	// pipeline file named file, probed from vantage (none when empty).
	sink func(w io.Writer, file, vantage string) sink.Sink
	// whole is true when the sink reads the attempts from the targets'
	// results, which must then keep them; else they stream to it alone.
	whole bool
	// stream is true when the sink reads nothing of the result's targets:
	// the run keeps no target's result (engine.Options.DiscardTargets), and
	// hands each to the sink as it is done when it is a sink.TargetSink
	// (json), else to nobody.
	stream bool
	// exact is true when the run keeps its statistics exact though it keeps
	// no attempt (engine.Options.ExactStats): json, which holds far more of
	// each attempt itself.
	exact bool
}

// outputs are the output formats: -o's help, its completion, its check and
// run take them from here.
var outputs = []output{
	{"table", func(w io.Writer, _, _ string) sink.Sink { return report.TableSink(w) }, true, false, false},
	{"json", func(w io.Writer, file, vantage string) sink.Sink { return report.JSONSink(w, file, vantage) }, false, true, true},
	{"jsonl", func(w io.Writer, _, vantage string) sink.Sink { return report.NewJSONLines(w, vantage) }, false, true, false},
	{"waterfall", func(w io.Writer, _, _ string) sink.Sink { return report.WaterfallSink(w, colorful(w)) }, true, false, false},
	{"prometheus", func(w io.Writer, _, vantage string) sink.Sink { return report.NewPrometheusSink(w, vantage) }, false, true, false},
	{"html", func(w io.Writer, file, _ string) sink.Sink { return status.NewReport(w, file) }, false, false, false},
}

// outputNames are the names of outputs, in order.
var outputNames = func() []string {
	names := make([]string, len(outputs))
	for i, o := range outputs {
		names[i] = o.name
	}
	return names
}()

// outputList is outputs as a sentence lists them: "table, ... or prometheus".
var outputList = strings.Join(outputNames[:len(outputNames)-1], ", ") + " or " + outputNames[len(outputNames)-1]

// registerOutput registers -o on c, set to def by default.
func (r *runFlags) registerOutput(c *cobra.Command, def string) {
	c.Flags().StringVarP(&r.output, "output", "o", def, "output format: "+outputList)
}

func (r *runFlags) register(c *cobra.Command) {
	r.registerOutput(c, "table")
	c.Flags().IntVar(&r.attempts, "attempts", 0, "attempts per target (overrides the run block and the targets' own)")
	c.Flags().IntVar(&r.concurrency, "concurrency", 0, "targets probed at once (overrides the run block)")
	c.Flags().BoolVar(&r.sequential, "sequential", false, "probe one target after another")
	c.Flags().DurationVar(&r.timeout, "timeout", 0, "deadline of each attempt (overrides the run block and the targets' own)")
	c.Flags().DurationVar(&r.interval, "interval", 0, "time between the starts of a target's attempts (overrides the run block)")
}

// options returns o with the flags given applied, and sets the attempts and
// timeout of targets (a file's), and of its targets files, that the flags
// override.
func (r *runFlags) options(o engine.Options, targets []*engine.Target, files ...*config.TargetsFile) engine.Options {
	if r.attempts > 0 {
		o.Attempts = r.attempts
	}
	if r.concurrency > 0 {
		o.Concurrency = r.concurrency
	}
	if r.sequential {
		o.Mode = engine.Sequential
	}
	if r.timeout > 0 {
		o.Timeout = r.timeout
	}
	if r.interval > 0 {
		o.Interval = r.interval
	}
	for _, t := range targets {
		if r.attempts > 0 {
			t.Attempts = r.attempts
		}
		if r.timeout > 0 {
			t.Timeout = r.timeout
		}
	}
	for _, tf := range files {
		if r.attempts > 0 {
			tf.Attempts = r.attempts
		}
		if r.timeout > 0 {
			tf.Timeout = r.timeout
		}
	}
	return o
}

// validate checks the output format and the values of the flags c was
// given: a value out of range is a usage error, not ignored.
func (r *runFlags) validate(c *cobra.Command) error {
	if !slices.Contains(outputNames, r.output) {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("unknown output format %q: use %s", r.output, outputList)}
	}
	for _, f := range []struct {
		name string
		ok   bool
		want string
	}{
		{"attempts", r.attempts >= 1, "a whole number of at least 1"},
		{"concurrency", r.concurrency >= 1, "a whole number of at least 1"},
		{"timeout", r.timeout > 0, "a duration above zero, such as 5s or 500ms"},
		{"interval", r.interval >= 0, "a duration of zero or more, such as 1s"},
	} {
		if c.Flags().Changed(f.name) && !f.ok {
			return &exitError{code: exitUsage, msg: fmt.Sprintf("invalid value %q for --%s: want %s",
				c.Flags().Lookup(f.name).Value, f.name, f.want)}
		}
	}
	return nil
}

func newRunCmd() *cobra.Command {
	ff := fileFlags{streamTargets: true}
	var rf runFlags
	var blackboxNames bool
	c := &cobra.Command{
		Use:   "run [FILE]",
		Short: "Run a pipeline file, or the targets of PROBE_TARGETS",
		Long: `Run every target of a pipeline file and print the phase timings.

Targets in PROBE_TARGETS ("host:port[:proto],...", proto tcp (the default),
http or https) are added to the file's: each uses the file's pipeline named
after its proto, or the implied one, as probe test builds it (system resolver
and TCP, then TLS and HTTP for https, HTTP for http). Without a FILE, probe
run runs the targets of PROBE_TARGETS alone, with the implied pipelines.

--attempts and --timeout override the file's run block and the targets' own
attempts and timeout; --concurrency, --sequential and --interval the run
block.

Outputs: table (the default), waterfall (every attempt's phases on one time
axis), json (one document), jsonl (one line per attempt, as they finish) and
prometheus (the text format, for node_exporter's textfile collector). With
-o prometheus, --blackbox-names (or the file's serve { blackbox_names = true },
which probe import blackbox writes) adds blackbox_exporter's metric families of
each target's latest attempt, labelled target. A run longer than a second
draws a progress bar on stderr when it is a terminal.`,
		Example: `  probe run examples/lab.hcl
  probe run pipeline.hcl -o json --attempts 10
  probe run pipeline.hcl -var api_host=api.internal -o jsonl | jq .total_ms
  probe run pipeline.hcl -o prometheus > probe.prom.tmp && mv probe.prom.tmp /var/lib/node_exporter/textfile/probe.prom
  PROBE_TARGETS="example.com:443:https,db.internal:5432" probe run pipeline.hcl
  PROBE_TARGETS="example.com:443:https,db.internal:5432" probe run --attempts 5`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := rf.validate(c); err != nil {
				return err
			}
			ads, err := parseEnvTargets(os.Getenv("PROBE_TARGETS"))
			if err != nil {
				return err
			}
			if len(args) == 0 {
				switch {
				case len(ads) == 0:
					return &exitError{code: exitUsage, msg: "no targets: give a pipeline FILE, or set PROBE_TARGETS=\"host:port[:proto],...\"\nSee 'probe run --help'."}
				case len(ff.vars) > 0 || len(ff.varFiles) > 0:
					return &exitError{code: exitUsage, msg: "-var and -var-file set a FILE's variables: give the FILE"}
				}
			}
			ctx, stop := interruptible()
			defer stop()
			var (
				file = &config.File{}
				pl   *pluginhost.Loader
				name string
			)
			if len(args) == 1 {
				name = args[0]
				if file, pl, err = ff.load(name, nil, nil); err != nil {
					return err
				}
			} else {
				if err := ff.applyVantage(file); err != nil {
					return err
				}
				pl = newLoader(ff.isolate)
			}
			defer pl.Close()
			defer file.Close()
			env, err := adHocTargets(ads, file.Pipelines, pl)
			if err != nil {
				return err
			}
			targets := slices.Concat(file.Targets, env)
			var more []sink.Sink
			export, err := ff.otelExport(file, logger(), targetHosts(targets, file.Options.Secrets, file.TargetsFiles...))
			if err != nil {
				return err
			}
			if export != nil {
				more = append(more, export)
			}
			if rf.output == "prometheus" && (file.Serve.BlackboxNames || blackboxNames) {
				more = append(more, exporter.NewBlackboxSink(targets))
			}
			return runFiles(ctx, c.OutOrStdout(), name, file.Vantage, rf.options(file.Options, targets, file.TargetsFiles...), rf.output,
				targets, file.TargetsFiles, more...)
		},
	}
	ff.register(c)
	ff.registerVantage(c)
	ff.registerOTel(c)
	rf.register(c)
	c.Flags().BoolVar(&blackboxNames, "blackbox-names", false,
		"with -o prometheus, add blackbox_exporter's metric families, labelled target (as the file's serve { blackbox_names = true } does)")
	return c
}

// interruptible returns a context that SIGINT and SIGTERM cancel. A command
// that probes takes it before it starts anything (plugin processes, the
// lab), so that a signal never kills probe before it has stopped them and
// removed their files: the run stops at once instead.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// run probes targets until ctx (interruptible's) ends, streams the
// attempts to the sink of format (one of outputs), closes it with the
// result, and returns the exit status as an error (nil when every target is
// ok). When ctx ends, what finished is still printed.
func run(ctx context.Context, w io.Writer, file, vantage string, opts engine.Options, format string, targets []*engine.Target, more ...sink.Sink) error {
	return runFiles(ctx, w, file, vantage, opts, format, targets, nil, more...)
}

// runFiles is run over targets, then the targets of files, read as the run
// goes: with an output that streams (jsonl, prometheus), nothing is kept
// of a target once it is probed, whatever their number. A targets file
// that can no longer be read, or whose lines went bad since it was loaded,
// ends the run there with an error, once what finished is printed.
func runFiles(ctx context.Context, w io.Writer, file, vantage string, opts engine.Options, format string, targets []*engine.Target,
	files []*config.TargetsFile, more ...sink.Sink) error {
	n := len(targets)
	for _, tf := range files {
		n += tf.Count
	}
	if n == 0 {
		return &exitError{code: exitUsage, msg: "no targets: the file declares no target block and PROBE_TARGETS is empty"}
	}
	out := outputs[slices.IndexFunc(outputs, func(o output) bool { return o.name == format })]
	opts.Logger = logger()
	// A sink that streams needs no attempt kept to the end, and one that
	// reads nothing of the result's targets no target's result.
	opts.DiscardAttempts = !out.whole
	opts.DiscardTargets = out.stream
	opts.ExactStats = out.exact
	eng := engine.New(opts)
	primary := out.sink(w, file, vantage)
	if p, ok := primary.(*report.PrometheusSink); ok {
		for _, m := range more { // exporter.BlackboxSink: its families go to the same text
			if r, ok := m.(report.Registrar); ok {
				p.Also(r)
			}
		}
	}
	stream := sink.Attach(eng, append([]sink.Sink{primary}, more...)...)
	rounds := eng.Rounds(targets)
	for _, tf := range files {
		attempts := tf.Attempts
		if attempts == 0 {
			attempts = eng.Options().Attempts
		}
		rounds += int64(tf.Count) * int64(attempts)
	}
	var readErr error
	all := func(yield func(*engine.Target) bool) {
		for _, t := range targets {
			if !yield(t) {
				return
			}
		}
		for _, tf := range files {
			for t, err := range tf.All() {
				if err != nil {
					readErr = fmt.Errorf("the targets file of target %q: %w", tf.Name, err)
					return
				}
				if !yield(t) {
					return
				}
			}
		}
	}
	stopProgress := progressFor(format, eng)
	res := eng.RunSeq(ctx, all, rounds)
	stopProgress()
	if err := stream.Close(res); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	warnDistorted(opts.Logger, res, eng.Options(), n)
	switch {
	case readErr != nil:
		return readErr
	case res.Interrupted:
		return &exitError{code: exitInterrupted, msg: "interrupted"}
	case res.Summary.Failed > 0:
		return &exitError{code: exitFailed}
	}
	return nil
}

func newValidateCmd() *cobra.Command {
	ff := fileFlags{streamTargets: true}
	c := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a pipeline file without probing anything",
		Long: `Check a pipeline file: syntax, references, variables, and every plugin's
attributes against its schema. All problems are printed at once; the exit
status is 2 when there is any.`,
		Example: "  probe validate examples/lab.hcl\n  probe validate pipeline.hcl -var-file prod.hcl",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// Loading starts plugin processes: a signal must not kill probe
			// before it has stopped them.
			ctx, stop := interruptible()
			defer stop()
			file, pl, err := ff.load(args[0], nil, nil)
			if err != nil {
				return err
			}
			defer pl.Close()
			defer file.Close()
			if ctx.Err() != nil {
				return &exitError{code: exitInterrupted, msg: "interrupted"}
			}
			n := len(file.Targets)
			for _, tf := range file.TargetsFiles {
				n += tf.Count
			}
			fmt.Fprintf(c.OutOrStdout(), "%s is valid: %d pipelines, %d targets.\n", args[0], len(file.Pipelines), n)
			return nil
		},
	}
	ff.register(c)
	return c
}

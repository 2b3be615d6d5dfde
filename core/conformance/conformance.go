// Package conformance is the plugin conformance kit behind `probe plugins
// check`: it starts a plugin binary as probe does (core/pluginhost: its
// minimal environment, the socket-passing channel as fd 3, go-plugin's
// handshake line and health service) and holds every component the binary
// declares to what probe relies on: a sane description and schema, a
// configuration accepted and a bad one refused with the attribute named, a
// resolver that answers the check's DNS server, a dialer that hands back a
// real socket, a handshake on a handed socket whose phase measures the
// server's answer, a failure returned as data with a class of the form
// area.what, the attempt's deadline honoured, a canceled call stopped, no
// socket kept, a whole attempt of its own resolver, dialer and handshake,
// recovery after the process is killed, and an exit when asked. Each check is a row of the result, with one line of explanation
// when it fails.
//
// The servers the checks run against are its own, on 127.0.0.1: a DNS
// server for the zone probe.test, and echo, greeting, TLS and HTTP servers
// that hold their answer 40 ms, hang up at once, or never answer. A check
// file (ParseFile) says how each component is configured and which server a
// handshake speaks to.
package conformance

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

const (
	// callTimeout bounds a call that should succeed.
	callTimeout = 5 * time.Second
	// deadlineTimeout is the attempt's deadline in the deadline check.
	deadlineTimeout = 300 * time.Millisecond
	// cancelAfter is when the cancellation check cancels its attempt.
	cancelAfter = 150 * time.Millisecond
	// closeWithin is how long after an attempt ends a socket's last copy
	// must be closed.
	closeWithin = time.Second
	// exitWithin is how long a plugin asked to exit may take.
	exitWithin = 1500 * time.Millisecond
	// minBackoff is the host's first restart backoff (core/pluginhost).
	minBackoff = 100 * time.Millisecond
	// leakAttempts is how many attempts the socket leak check runs.
	leakAttempts = 3
)

// Result is one check.
type Result struct {
	// Plugin is the plugin checked; "" for the binary as a whole.
	Plugin string
	// Kind is the component checked; "" for the plugin or the binary.
	Kind sdk.Kind
	// Check names the check ("start", "handshake", "deadline").
	Check string
	// Problem says why the check failed, in one line; "" when it passed or
	// did not run.
	Problem string
	// Skipped says why the check did not run; "" when it ran.
	Skipped string
}

// Failed reports whether the check ran and failed.
func (r Result) Failed() bool { return r.Problem != "" }

// Options configure a Run.
type Options struct {
	// Binary is the plugin binary to check, started as probe starts it.
	Binary pluginhost.Binary
	// CheckFile is the source of a check file (ParseFile), nil for none:
	// every component is checked with its schema's defaults.
	CheckFile []byte
	// CheckFileName names it in errors.
	CheckFileName string
	// Log receives the plugin's log lines; nil for none.
	Log hclog.Logger
}

// Run checks the binary and returns a result per check. The error is for
// a check that could not run at all: a bad check file, servers that would
// not start.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	e, err := startEnv()
	if err != nil {
		return nil, fmt.Errorf("start the check's servers: %w", err)
	}
	defer e.close()
	var file *File
	if opts.CheckFile != nil {
		if file, err = ParseFile(opts.CheckFileName, opts.CheckFile, e.vars()); err != nil {
			return nil, err
		}
	}
	host, err := pluginhost.New(opts.Log)
	if err != nil {
		return nil, err
	}
	c := &checker{ctx: ctx, env: e, file: file, host: host, bin: opts.Binary}
	plugins, err := host.Load(opts.Binary)
	c.add("", "", "start", startProblem(err))
	if err != nil {
		_ = host.Close()
		return c.results, nil
	}
	c.add("", "", "health", errText(host.Ping(opts.Binary)))
	slices.SortFunc(plugins, func(a, b *sdk.Plugin) int { return strings.Compare(a.Info.Name, b.Info.Name) })
	var again func() string
	for _, p := range plugins {
		c.add(p.Info.Name, "", "describe", describeProblems(p)...)
		for _, k := range p.Kinds() {
			if r := c.component(p, k); again == nil {
				again = r
			}
		}
	}
	c.whole()
	c.crash(again)
	c.shutdown()
	return c.results, nil
}

// checker runs the checks of one binary.
type checker struct {
	ctx     context.Context
	env     *env
	file    *File
	host    *pluginhost.Host
	bin     pluginhost.Binary
	results []Result
	// The components whose main call succeeded, for the whole attempt.
	resolvers   []configured[sdk.Resolver]
	dialers     []configured[sdk.Dialer]
	handshakers []configured[sdk.Handshaker]
}

// configured is a component configured in the plugin process, and how it is
// checked.
type configured[T any] struct {
	name string
	comp T
	set  *Component
}

// add records a check: passed when problems holds no sentence.
func (c *checker) add(plugin string, k sdk.Kind, check string, problems ...string) {
	var ps []string
	for _, p := range problems {
		if p != "" {
			ps = append(ps, p)
		}
	}
	c.results = append(c.results, Result{Plugin: plugin, Kind: k, Check: check, Problem: strings.Join(ps, "; ")})
}

func (c *checker) skip(plugin string, k sdk.Kind, check, why string) {
	c.results = append(c.results, Result{Plugin: plugin, Kind: k, Check: check, Skipped: why})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(err.Error())
}

// oneLine cuts s to its first line.
func oneLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// startProblem explains a start that failed.
func startProblem(err error) string {
	problem := errText(err)
	if strings.Contains(problem, "Unrecognized remote plugin message") {
		problem += ` (the first line on stdout must be go-plugin's handshake line, such as "1|1|unix|/path/to/plugin.sock|grpc")`
	}
	return problem
}

var (
	namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	attrPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// describeProblems checks what a plugin says of itself.
func describeProblems(p *sdk.Plugin) []string {
	var out []string
	if !namePattern.MatchString(p.Info.Name) {
		out = append(out, fmt.Sprintf("name %q: want lower-case letters, digits and hyphens, as a pipeline names it", p.Info.Name))
	}
	if p.Info.Version == "" {
		out = append(out, "no version")
	}
	if p.Info.Description == "" {
		out = append(out, "no description (one line for `probe plugins`)")
	}
	if len(p.Kinds()) == 0 {
		out = append(out, "serves no component: no resolver, dialer nor handshake schema")
	}
	for _, k := range p.Kinds() {
		seen := map[string]bool{}
		for _, a := range p.Schema(k).Attributes {
			switch {
			case !attrPattern.MatchString(a.Name):
				out = append(out, fmt.Sprintf("%s attribute %q: want a lower-case HCL name", k, a.Name))
			case seen[a.Name]:
				out = append(out, fmt.Sprintf("%s attribute %q twice", k, a.Name))
			case a.Description == "":
				out = append(out, fmt.Sprintf("%s attribute %q has no description (for `probe plugins show`)", k, a.Name))
			case a.Required && a.Default != cty.NilVal:
				out = append(out, fmt.Sprintf("%s attribute %q is required and has a default", k, a.Name))
			}
			seen[a.Name] = true
		}
	}
	return out
}

// component checks one component and returns its main call, for the crash
// check to run again; nil when it could not be configured.
func (c *checker) component(p *sdk.Plugin, k sdk.Kind) func() string {
	name := p.Info.Name
	set := c.file.component(k, name)
	cfg, err := p.Schema(k).Config(set.Config)
	if err != nil {
		c.add(name, k, "configure", "the configuration does not fit the schema: "+errText(err)+" (give its attributes in a check file, --config)")
		return nil
	}
	comp, err := p.New(k, cfg)
	if err != nil {
		c.add(name, k, "configure", "refused the configuration: "+errText(err)+" (give its attributes in a check file, --config)")
		return nil
	}
	c.add(name, k, "configure")
	c.reject(p, k, set)
	switch k {
	case sdk.KindResolver:
		return c.resolver(name, comp.(sdk.Resolver), set)
	case sdk.KindDialer:
		return c.dialer(name, comp.(sdk.Dialer), set)
	default:
		return c.handshaker(name, comp.(sdk.Handshaker), set)
	}
}

// reject checks that the constructor refuses set.Reject naming an
// attribute of it.
func (c *checker) reject(p *sdk.Plugin, k sdk.Kind, set *Component) {
	name := p.Info.Name
	if set.Reject == nil {
		c.skip(name, k, "reject", "no reject example in the check file")
		return
	}
	values := map[string]cty.Value{}
	maps.Copy(values, set.Config)
	maps.Copy(values, set.Reject)
	cfg, err := p.Schema(k).Config(values)
	if err != nil {
		c.add(name, k, "reject", "the reject example does not fit the schema, so the plugin never sees it: "+errText(err))
		return
	}
	keys := slices.Sorted(maps.Keys(set.Reject))
	_, err = p.New(k, cfg)
	ae, ok := sdk.AsAttrError(err)
	switch {
	case err == nil:
		c.add(name, k, "reject", fmt.Sprintf("accepted %s; want it refused with an error naming the attribute", ctyObject(set.Reject)))
	case !ok:
		c.add(name, k, "reject", "refused it without naming the attribute (return an sdk.AttrError; on the wire ConfigureResponse.attr_error): "+errText(err))
	case !slices.Contains(keys, ae.Attr):
		c.add(name, k, "reject", fmt.Sprintf("refused it naming attribute %q, want one of %v", ae.Attr, keys))
	default:
		c.add(name, k, "reject")
	}
}

var classPattern = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)

// failureProblem checks a failure that should be the target's, reported
// as data: a class of the form area.what, not the plugin's own trouble.
func failureProblem(f *sdk.Failure) string {
	switch {
	case f == nil:
		return "no failure"
	case strings.HasPrefix(string(f.Class), "plugin."):
		return fmt.Sprintf("failed as %s (%s): the target's failure is data, a class of the plugin's own, not an error or a panic", f.Class, oneLine(f.Message))
	case f.Class != sdk.ClassCanceled && !classPattern.MatchString(string(f.Class)):
		return fmt.Sprintf("failure class %q: want area.what, such as tcp.refused or banner.timeout", f.Class)
	}
	return ""
}

// phaseProblems checks the phases a component answered in a call that
// took took on probe's side.
func phaseProblems(phases []sdk.Phase, f *sdk.Failure, took time.Duration) []string {
	if len(phases) == 0 {
		return []string{"no phase: a component reports what it measured, when it fails too"}
	}
	var out []string
	for _, p := range phases {
		switch {
		case p.Start < 0 || p.Duration < 0:
			out = append(out, fmt.Sprintf("phase %s starts at %v and lasts %v: no measurement is negative", p.Name, p.Start, p.Duration))
		case p.Start+p.Duration > took:
			out = append(out, fmt.Sprintf("phase %s ends at %v, after the call, which took %v on probe's side", p.Name, p.Start+p.Duration, took))
		}
	}
	if last := phases[len(phases)-1]; f != nil && last.OK {
		out = append(out, fmt.Sprintf("failed, but its last phase %s says ok", last.Name))
	}
	return out
}

// wantFailure checks a call that must fail as class.
func wantFailure(f *sdk.Failure, class sdk.Class) string {
	switch {
	case f == nil:
		return fmt.Sprintf("succeeded; the check file wants it to fail as %s", class)
	case f.Class != class:
		return fmt.Sprintf("failed as %s (%s), the check file wants %s", f.Class, oneLine(f.Message), class)
	}
	return ""
}

// crash kills the plugin process and runs again: the call must succeed in
// a new process, the first after the kill or, if that one found the process
// dead before the host noticed, the next.
func (c *checker) crash(again func() string) {
	if again == nil {
		c.skip("", "", "crash recovery", "no component could be configured")
		return
	}
	pids := c.host.Pids()
	if len(pids) == 0 { // a check before found it hung, and it is restarting
		again()
		pids = c.host.Pids()
	}
	if len(pids) != 1 {
		c.add("", "", "crash recovery", fmt.Sprintf("plugin processes %v, want one", pids))
		return
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		c.add("", "", "crash recovery", errText(err))
		return
	}
	gone := time.Now().Add(2 * time.Second)
	for time.Now().Before(gone) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pids[0])); os.IsNotExist(err) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // reaped: the host can tell it exited
	problem := again()
	if problem != "" {
		// The attempt found the process dead before the host noticed the
		// exit: it failed as in flight, and the next one restarts it.
		time.Sleep(2 * minBackoff)
		problem = again()
	}
	if problem != "" {
		problem = "after the process was killed: " + problem
	} else if now := c.host.Pids(); len(now) != 1 || now[0] == pids[0] {
		problem = fmt.Sprintf("plugin processes %v after process %d was killed, want a new one", now, pids[0])
	}
	c.add("", "", "crash recovery", problem)
}

// shutdown closes the host: the plugin must exit when asked.
func (c *checker) shutdown() {
	pids := c.host.Pids()
	start := time.Now()
	err := c.host.Close()
	took := time.Since(start)
	problem := errText(err)
	if took > exitWithin {
		problem = fmt.Sprintf("took %v to exit when asked, and was killed: serve go-plugin's GRPCController.Shutdown, or exit when fd 3 closes", took.Round(time.Millisecond))
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			problem = fmt.Sprintf("process %d still runs after probe closed it", pid)
		}
	}
	c.add("", "", "exit", problem)
}

// Write writes the results as a table, one row per check, a failure's
// explanation in its row, and a summary line. It returns how many failed.
func Write(w io.Writer, results []Result) (int, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tCOMPONENT\tCHECK\tRESULT")
	var passed, failed, skipped int
	for _, r := range results {
		plugin, kind := r.Plugin, string(r.Kind)
		if plugin == "" {
			plugin = "-"
		}
		if kind == "" {
			kind = "-"
		}
		res := "pass"
		switch {
		case r.Failed():
			res = "FAIL: " + r.Problem
			failed++
		case r.Skipped != "":
			res = "skip: " + r.Skipped
			skipped++
		default:
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", plugin, kind, r.Check, res)
	}
	if err := tw.Flush(); err != nil {
		return failed, err
	}
	_, err := fmt.Fprintf(w, "\n%d checks: %d passed, %d failed, %d skipped\n", len(results), passed, failed, skipped)
	return failed, err
}

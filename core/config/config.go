// Package config loads pipeline files: HCL with variables, functions,
// references between blocks, and plugin attributes checked against each
// plugin's declared schema. Every problem in a file is collected and
// returned as HCL diagnostics with file, line and source snippet; nothing is
// returned for probing until the whole file is valid.
package config

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/probe-dev/probe/core/engine"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// Options say where a file's surroundings come from.
type Options struct {
	// Plugins are the plugins a file may name without a plugin block, by
	// Info.Name: the built-ins.
	Plugins map[string]*sdk.Plugin
	// Loader loads the plugins of plugin blocks, and those a file names that
	// Plugins lacks. Nil: a file may name only Plugins.
	Loader PluginLoader
	// Vars are -var values, "name" → raw value.
	Vars map[string]string
	// VarFiles are -var-file paths, HCL files of name = value lines, applied
	// in order after PROBE_VAR_* and before Vars.
	VarFiles []string
	// Getenv reads the environment (env() and PROBE_VAR_*); os.Getenv when nil.
	Getenv func(string) string
	// Environ lists the environment as KEY=VALUE, for PROBE_VAR_*;
	// os.Environ when nil.
	Environ func() []string
	// StreamTargets leaves the targets of targets files (a target block's
	// targets_file) in File.TargetsFiles, to be read as a run goes, for a
	// command that runs through them once (probe run, probe validate).
	// Without it, they join File.Targets.
	StreamTargets bool
}

// File is a loaded, valid pipeline file.
type File struct {
	// Path is the file's name as given.
	Path string
	// Options are the run block's settings; zero fields mean the engine's
	// defaults. Options.Secrets holds the strings of the variables declared
	// sensitive, which outputs and diagnostics redact.
	Options engine.Options
	// Pipelines by name.
	Pipelines map[string]*engine.Pipeline
	// Targets in file order, for_each instances in key order; with the
	// targets of targets files, in file order too, unless the loader
	// streams them (Options.StreamTargets).
	Targets []*engine.Target
	// TargetsFiles are the target blocks whose targets are in a file, when
	// the loader streams them (Options.StreamTargets): their targets are
	// read as a run goes, after Targets.
	TargetsFiles []*TargetsFile
	// Schedule is the schedule block's settings; zero without one.
	Schedule Schedule
	// Serve is the serve block's settings; zero without one.
	Serve Serve
	// Discovery is what the file read of target lists and DNS (file_sd,
	// dns_srv).
	Discovery Discovery
	// Vantage names where the probing runs (a region, a network), from the
	// top-level vantage attribute; empty without one. Outputs label their
	// series and records with it.
	Vantage string
	// OTel is the otel block's settings; zero without one.
	OTel OTel

	components []any
	// sensitive lists, by pipeline name, the components whose configuration
	// holds a value of a sensitive variable.
	sensitive map[string][]string
}

// PipelineNames returns the names of the file's pipelines, sorted.
func (f *File) PipelineNames() []string {
	names := make([]string, 0, len(f.Pipelines))
	for n := range f.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Sensitive returns the components of the pipeline named pipeline whose
// configuration holds a value derived from a sensitive variable, as
// KIND.NAME ("handshake.http") in the pipeline's order; none when no
// component does. Such a pipeline may send the secret to whatever it
// probes.
func (f *File) Sensitive(pipeline string) []string { return f.sensitive[pipeline] }

// Close releases the components the file configured.
func (f *File) Close() error {
	var first error
	for _, c := range f.components {
		if cl, ok := c.(sdk.Closer); ok {
			if err := cl.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Loader loads pipeline files and keeps their sources for diagnostics.
type Loader struct {
	opts   Options
	parser *hclparse.Parser
	// maxSteps and maxBytes bound evaluation (budget.go); tests lower them.
	maxSteps, maxBytes int64
}

// NewLoader returns a loader with opts.
func NewLoader(opts Options) *Loader {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ
	}
	return &Loader{opts: opts, parser: hclparse.NewParser(), maxSteps: maxSteps, maxBytes: maxBytes}
}

// LoadFile reads and loads the pipeline file at path.
func (l *Loader) LoadFile(path string) (*File, hcl.Diagnostics) {
	src, diag := readSource(path, "pipeline file")
	if diag != nil {
		return nil, hcl.Diagnostics{diag}
	}
	return l.LoadSource(path, src)
}

// LoadSource loads a pipeline file from src; name is used in diagnostics.
// On error diagnostics the returned File is nil and every component that was
// configured has been closed.
func (l *Loader) LoadSource(name string, src []byte) (*File, hcl.Diagnostics) {
	if diag := l.checkSource(name, src, "pipeline file"); diag != nil {
		return nil, hcl.Diagnostics{diag}
	}
	hf, diags := l.parser.ParseHCL(src, name)
	if diags.HasErrors() {
		return nil, diags
	}
	if body, ok := hf.Body.(*hclsyntax.Body); ok {
		budgetExprs(body)
	}
	d := &decoder{opts: l.opts, loader: l, file: &File{Path: name}, budget: newBudget(l.maxSteps, l.maxBytes)}
	d.decode(hf.Body)
	suggestAttributes(d.diags)
	d.diags = dedupe(d.limitDiags(d.diags))
	redactDiags(d.diags, d.file.Options.Secrets)
	if d.diags.HasErrors() {
		_ = d.file.Close()
		return nil, d.diags
	}
	return d.file, d.diags
}

// WriteDiagnostics prints diags the way Terraform does: severity, summary,
// file and line, the source snippet, and the detail.
func (l *Loader) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, width uint, color bool) error {
	return hcl.NewDiagnosticTextWriter(w, l.parser.Files(), width, color).WriteDiagnostics(diags)
}

// rootSchema is the top level of a pipeline file.
var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "vantage"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "run"},
		{Type: "schedule"},
		{Type: "serve"},
		{Type: "otel"},
		{Type: "plugin", LabelNames: []string{"name"}},
		{Type: "resolver", LabelNames: []string{"name"}},
		{Type: "dialer", LabelNames: []string{"name"}},
		{Type: "handshake", LabelNames: []string{"name"}},
		{Type: "pipeline", LabelNames: []string{"name"}},
		{Type: "target", LabelNames: []string{"name"}},
	},
}

// decoder holds the state of one file's decoding.
type decoder struct {
	opts   Options
	loader *Loader
	file   *File
	diags  hcl.Diagnostics
	ctx    *hcl.EvalContext
	// components are the resolver, dialer and handshake blocks by kind, then
	// name; pipelines the pipeline blocks by name.
	components map[sdk.Kind]map[string]*block[*component]
	pipelines  map[string]*block[*engine.Pipeline]
	// plugins are the plugins this file may name: Options.Plugins and those
	// loaded for it.
	plugins map[string]*sdk.Plugin
	// unloaded are the plugins whose plugin block failed to load.
	unloaded map[string]bool
	// budget is what evaluating the file may still cost; limitReported,
	// whether a diagnostic said it was spent.
	budget        *budget
	limitReported bool
}

// component is a decoded resolver, dialer or handshake: a block, or one
// instance of a block with for_each.
type component struct {
	kind   sdk.Kind
	name   string // the block's name, NAME[KEY] for an instance
	plugin string
	impl   any
	match  []string
	// conn is what a dialer hands to the handshakes, or what a handshake
	// runs over (its plugin's DialerConn, HandshakeConn).
	conn sdk.ConnKind
	// sensitive: the configuration holds a value of a sensitive variable.
	sensitive bool
}

func (d *decoder) decode(body hcl.Body) {
	content, diags := body.Content(rootSchema)
	d.diags = append(d.diags, diags...)
	byType := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}

	vars := d.variables(byType["variable"])
	d.unloaded = map[string]bool{}
	d.plugins = maps.Clone(d.opts.Plugins)
	if d.plugins == nil {
		d.plugins = map[string]*sdk.Plugin{}
	}
	d.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: functions(d.opts.Getenv, d.budget),
	}
	maps.Copy(d.ctx.Functions, discoveryFuncs(&d.file.Discovery, filepath.Dir(d.file.Path)))
	d.vantage(content.Attributes["vantage"])
	d.run(byType["run"])
	d.schedule(byType["schedule"])
	d.serve(byType["serve"])
	d.otel(byType["otel"])
	d.pluginBlocks(byType["plugin"])
	d.components = map[sdk.Kind]map[string]*block[*component]{}
	for _, k := range sdk.Kinds {
		d.components[k] = d.componentBlocks(k, byType[string(k)])
	}
	d.pipelineBlocks(byType["pipeline"])
	d.targets(byType["target"])
}

func (d *decoder) pluginNames() []string {
	names := make([]string, 0, len(d.plugins))
	for n := range d.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dedupe drops the diagnostics that repeat an earlier one word for word at
// the same place: an attribute of a block with for_each that fails the same
// way for every instance is reported once.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	type key struct {
		severity        hcl.DiagnosticSeverity
		summary, detail string
		subject         hcl.Range
	}
	seen := make(map[key]bool, len(diags))
	out := diags[:0]
	for _, d := range diags {
		k := key{severity: d.Severity, summary: d.Summary, detail: d.Detail}
		if d.Subject != nil {
			k.subject = *d.Subject
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

// redactDiags replaces the secrets in the diagnostics' texts, which may
// quote values (a plugin's validation message, say).
func redactDiags(diags hcl.Diagnostics, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	r := engine.NewRedactor(secrets)
	for _, d := range diags {
		d.Summary, d.Detail = r.Redact(d.Summary), r.Redact(d.Detail)
	}
}

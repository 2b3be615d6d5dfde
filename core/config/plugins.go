package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/zclconf/go-cty/cty"
)

// PluginLoader loads plugins that are not built in, or runs built-in ones
// out of process.
type PluginLoader interface {
	LoadPlugin(decl PluginDecl) (*sdk.Plugin, error)
}

// PluginDecl is what a file says of a plugin: a plugin block, or only its
// name in a component's plugin attribute (all other fields zero).
type PluginDecl struct {
	// Name is the plugin's name.
	Name string
	// Source is the plugin binary's path as written, "" to search for
	// probe-plugin-NAME.
	Source string
	// Dir is the directory of the pipeline file, against which a relative
	// Source is resolved.
	Dir string
	// SHA256 is the hex digest the binary must have, "" for no pin.
	SHA256 string
	// Isolate asks for a built-in plugin to run out of process.
	Isolate bool
	// Env names the variables of probe's environment that the plugin
	// process gets besides the few every plugin gets (PATH, HOME, ...).
	Env []string
}

// SourcePath returns Source resolved against Dir, "" when Source is unset.
func (d PluginDecl) SourcePath() string {
	if d.Source == "" || filepath.IsAbs(d.Source) {
		return d.Source
	}
	return filepath.Join(d.Dir, d.Source)
}

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source"},
		{Name: "sha256"},
		{Name: "isolate"},
		{Name: "env"},
	},
}

// envName is what a variable name of a plugin block's env may be.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pluginBlocks loads the plugins of the plugin blocks before any component
// names them.
func (d *decoder) pluginBlocks(blocks []*hcl.Block) {
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			d.diags = append(d.diags, duplicate("plugin", name, b.DefRange, prev))
			continue
		}
		seen[name] = b.DefRange
		content, diags := b.Body.Content(pluginSchema)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		decl := PluginDecl{Name: name, Dir: filepath.Dir(d.file.Path)}
		subject := b.DefRange
		if a := content.Attributes["source"]; a != nil {
			v, ok := d.eval(a, d.ctx, cty.String)
			if !ok {
				continue
			}
			decl.Source, subject = v.AsString(), a.Expr.Range()
		}
		if a := content.Attributes["sha256"]; a != nil {
			v, ok := d.eval(a, d.ctx, cty.String)
			if !ok {
				continue
			}
			decl.SHA256 = v.AsString()
		}
		if a := content.Attributes["isolate"]; a != nil {
			v, ok := d.eval(a, d.ctx, cty.Bool)
			if !ok {
				continue
			}
			decl.Isolate = v.True()
		}
		if a := content.Attributes["env"]; a != nil {
			v, ok := d.eval(a, d.ctx, cty.List(cty.String))
			if !ok {
				continue
			}
			for _, name := range v.AsValueSlice() {
				if name.IsNull() || !envName.MatchString(name.AsString()) {
					got := "null"
					if !name.IsNull() {
						got = strconv.Quote(name.AsString())
					}
					d.attrError(a, "Invalid environment variable name", fmt.Sprintf(
						"env lists the names of environment variables to pass to the plugin, such as \"TS_AUTHKEY\"; got %s.", got))
					ok = false
					break
				}
				decl.Env = append(decl.Env, name.AsString())
			}
			if !ok {
				continue
			}
		}
		if d.opts.Loader == nil {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin blocks are not supported here",
				Detail:  fmt.Sprintf("Plugin %q needs a plugin host, which this program does not provide.", name),
				Subject: b.DefRange.Ptr()})
			continue
		}
		p, err := d.opts.Loader.LoadPlugin(decl)
		if err != nil {
			d.unloaded[name] = true
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Failed to load plugin",
				Detail: fmt.Sprintf("Plugin %q could not be loaded: %s.", name, err), Subject: subject.Ptr()})
			continue
		}
		d.plugins[name] = p
	}
}

// plugin returns the plugin name names: one the file may already name, else
// one the loader finds. When there is none, why says why, if the loader said.
// A plugin whose block failed to load is not searched for again: ok is false
// and its error is already reported.
func (d *decoder) plugin(name string) (p *sdk.Plugin, why string, ok bool) {
	if d.unloaded[name] {
		return nil, "", false
	}
	if p := d.plugins[name]; p != nil || d.opts.Loader == nil {
		return p, "", true
	}
	p, err := d.opts.Loader.LoadPlugin(PluginDecl{Name: name, Dir: filepath.Dir(d.file.Path)})
	if err != nil {
		return nil, "Looked for its binary: " + err.Error() + ".", true
	}
	d.plugins[name] = p
	return p, "", true
}

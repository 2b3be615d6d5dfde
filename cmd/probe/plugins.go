package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/probe-dev/probe/core/config"
	"github.com/probe-dev/probe/core/pluginhost"
	"github.com/probe-dev/probe/core/sdk"
	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/spf13/cobra"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func newPluginsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "plugins",
		Short: "List the plugins: built in, and plugin binaries on the search path",
		Long: `List the built-in plugins and the plugin binaries (probe-plugin-NAME) found on
the search path: PROBE_PLUGIN_PATH, the directory of probe, ~/.probe/plugins.
Each binary is started to ask what it serves; one that may not run says why.`,
		Example: `  probe plugins
  PROBE_PLUGIN_PATH=./bin probe plugins
  probe plugins show http`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			pl := newLoader(false)
			defer pl.Close()
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PLUGIN\tVERSION\tCOMPONENTS\tSOURCE\tDESCRIPTION")
			builtin := builtins.Plugins()
			for _, name := range slices.Sorted(maps.Keys(builtin)) {
				p := builtin[name]
				fmt.Fprintf(tw, "%s\t%s\t%s\tbuilt-in\t%s\n", name, p.Info.Version, kinds(p), p.Info.Description)
			}
			for _, cand := range pluginhost.Discover() {
				source := fmt.Sprintf("%s (%s)", cand.Path, cand.Where)
				if _, shadowed := builtin[cand.Name]; shadowed {
					fmt.Fprintf(tw, "%s\t-\t-\t%s\trefused: a built-in plugin has this name\n", cand.Name, source)
					continue
				}
				p, err := pl.LoadPlugin(config.PluginDecl{Name: cand.Name, Source: cand.Path})
				if err != nil {
					fmt.Fprintf(tw, "%s\t-\t-\t%s\trefused: %v\n", cand.Name, source, err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cand.Name, p.Info.Version, kinds(p), source, p.Info.Description)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(&cobra.Command{
		Use:     "show NAME",
		Short:   "Show a plugin's components and the attributes each accepts",
		Example: "  probe plugins show dns-miekg\n  probe plugins show http",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pl := newLoader(false)
			defer pl.Close()
			p, err := pl.LoadPlugin(config.PluginDecl{Name: args[0]})
			if err != nil {
				return &exitError{code: exitUsage, msg: fmt.Sprintf("no plugin named %q: %v; see 'probe plugins'", args[0], err)}
			}
			return showPlugin(c.OutOrStdout(), p)
		},
	})
	c.AddCommand(newPluginsCheckCmd(), newPluginsNewCmd())
	return c
}

func kinds(p *sdk.Plugin) string {
	var ks []string
	for _, k := range p.Kinds() {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ",")
}

// showPlugin writes a plugin's description and, per component, an example
// block and its attribute table.
func showPlugin(w io.Writer, p *sdk.Plugin) error {
	fmt.Fprintf(w, "%s %s\n%s\n", p.Info.Name, p.Info.Version, p.Info.Description)
	for _, k := range p.Kinds() {
		fmt.Fprintf(w, "\n%s \"NAME\" {\n  plugin = %q\n", k, p.Info.Name)
		if k == sdk.KindResolver {
			fmt.Fprintln(w, `  match  = ["*.example.com", "10.0.0.0/8"]   # optional: hosts it answers for`)
		}
		schema := p.Schema(k)
		for _, a := range schema.Attributes {
			req := "optional"
			if a.Required {
				req = "required"
			}
			fmt.Fprintf(w, "  %s = %s   # %s, %s\n", a.Name, exampleValue(a), a.Type.FriendlyName(), req)
		}
		fmt.Fprintln(w, "}")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\n  ATTRIBUTE\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, a := range schema.Attributes {
			def := "-"
			if a.Required {
				def = "(required)"
			} else if a.Default != cty.NilVal {
				def = ctyString(a.Default)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Name, a.Type.FriendlyName(), def, a.Description)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func exampleValue(a sdk.Attribute) string {
	if a.Default != cty.NilVal {
		return ctyString(a.Default)
	}
	switch {
	case a.Type == cty.String:
		return `"..."`
	case a.Type == cty.Bool:
		return "false"
	case a.Type == cty.Number:
		return "0"
	default:
		return "[...]"
	}
}

// ctyString renders a value as HCL-ish JSON ("2s", ["a"], true).
func ctyString(v cty.Value) string {
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.GoString()
	}
	return string(b)
}

package main

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/probe-dev/probe/core/sdk"
	"github.com/spf13/cobra"
)

// skeleton holds the templates of `probe plugins new`.
//
//go:embed skeleton/*.tmpl
var skeleton embed.FS

// pluginName is what a plugin may be called: a pipeline names it so.
var pluginName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

func newPluginsNewCmd() *cobra.Command {
	var kind, dir string
	c := &cobra.Command{
		Use:   "new NAME --kind handshake|dialer|resolver",
		Short: "Write the skeleton of a Go plugin that passes `probe plugins check`",
		Long: `Write a Go plugin binary's folder (main.go, plugin.go, the component and its
test, which runs the conformance kit, check.hcl and a README) into DIR, ./NAME by
default, inside a Go module that requires github.com/probe-dev/probe. As
written it builds and passes ` + "`probe plugins check`" + `: a handshake that writes a
line and reads it back, a TCP dialer, or a resolver that asks one DNS server.`,
		Example: `  probe plugins new greeter --kind handshake
  cd greeter && go test . && go build -o probe-plugin-greeter .`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if !pluginName.MatchString(name) {
				return &exitError{code: exitUsage, msg: fmt.Sprintf("plugin name %q: use lower-case letters, digits and hyphens, starting with a letter", name)}
			}
			k := sdk.Kind(kind)
			if k != sdk.KindHandshake && k != sdk.KindDialer && k != sdk.KindResolver {
				return &exitError{code: exitUsage, msg: fmt.Sprintf("--kind %q: want handshake, dialer or resolver", kind)}
			}
			if dir == "" {
				dir = name
			}
			files, err := writeSkeleton(dir, name, k)
			if err != nil {
				return &exitError{code: exitUsage, msg: err.Error()}
			}
			for _, f := range files {
				fmt.Fprintln(c.OutOrStdout(), f)
			}
			return nil
		},
	}
	c.Flags().StringVar(&kind, "kind", "", "the component: handshake, dialer or resolver")
	c.Flags().StringVar(&dir, "dir", "", "the `DIR` to write, which must not exist or be empty (default ./NAME)")
	_ = c.MarkFlagRequired("kind")
	c.ValidArgsFunction = cobra.NoFileCompletions
	_ = c.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(
		[]string{string(sdk.KindHandshake), string(sdk.KindDialer), string(sdk.KindResolver)}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// writeSkeleton writes the plugin name's files, of kind k, into dir and
// returns their paths.
func writeSkeleton(dir, name string, k sdk.Kind) ([]string, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty; give an empty or new directory (--dir)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	data := struct {
		Name string
		Kind sdk.Kind
	}{name, k}
	var written []string
	for _, f := range []struct{ tmpl, out string }{
		{"main.go", "main.go"},
		{"plugin.go", "plugin.go"},
		{string(k) + ".go", string(k) + ".go"},
		{"component_test.go", string(k) + "_test.go"},
		{"check.hcl", "check.hcl"},
		{"README.md", "README.md"},
	} {
		t, err := template.ParseFS(skeleton, "skeleton/"+f.tmpl+".tmpl")
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, err
		}
		src := b.Bytes()
		if strings.HasSuffix(f.out, ".go") {
			if src, err = format.Source(src); err != nil {
				return nil, fmt.Errorf("%s: %w", f.out, err)
			}
		}
		path := filepath.Join(dir, f.out)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	return written, nil
}

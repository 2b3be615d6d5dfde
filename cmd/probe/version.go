package main

import (
	"fmt"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/spf13/cobra"
)

// versionText is what `probe version` and `probe --version` print: probe's
// version and the commit it was built from, as the Go toolchain recorded them
// in the binary (bi; nil when it recorded nothing), the Go version, and the
// built-in plugins with theirs. A binary built outside a module version says
// "(devel)"; one built without version control information says so instead
// of a commit.
func versionText(bi *debug.BuildInfo) string {
	version, commit := "(devel)", "unknown: built without version control information"
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			commit = rev
			if t := settings["vcs.time"]; t != "" {
				commit += " (" + t + ")"
			}
			if settings["vcs.modified"] == "true" {
				commit += ", with uncommitted changes"
			}
		}
	}
	builtin := builtins.Plugins()
	plugins := make([]string, 0, len(builtin))
	for _, name := range slices.Sorted(maps.Keys(builtin)) {
		plugins = append(plugins, name+" "+builtin[name].Info.Version)
	}
	return fmt.Sprintf("probe %s\ncommit:  %s\ngo:      %s %s/%s\nplugins: %s\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, strings.Join(plugins, ", "))
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print probe's version, commit, Go version and built-in plugins",
		Long: `Print probe's version and the commit it was built from (as the Go toolchain
recorded them in the binary; "(devel)" when it recorded no version), the Go
version, and the built-in plugins with their versions. probe --version prints
the same.`,
		Example: "  probe version\n  probe --version",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(c.OutOrStdout(), versionText(buildInfo()))
			return err
		},
	}
}

// buildInfo is the build information of the running binary; nil when it
// has none.
func buildInfo() *debug.BuildInfo {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi
	}
	return nil
}

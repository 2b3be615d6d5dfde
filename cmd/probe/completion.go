package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/probe-dev/probe/plugins/builtins"
	"github.com/spf13/cobra"
)

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print a script that teaches the shell to complete probe's commands, flags,
pipeline files (*.hcl), protocols and plugin names. Load it in the current
shell, or install it where the shell looks for completions.`,
		Example: `  source <(probe completion bash)
  probe completion bash > /etc/bash_completion.d/probe
  probe completion zsh > "${fpath[1]}/_probe"      # then: autoload -U compinit && compinit
  probe completion fish > ~/.config/fish/completions/probe.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(c *cobra.Command, args []string) error {
			w := c.OutOrStdout()
			switch args[0] {
			case "bash":
				return c.Root().GenBashCompletionV2(w, true)
			case "zsh":
				return c.Root().GenZshCompletion(w)
			default:
				return c.Root().GenFishCompletion(w, true)
			}
		},
	}
}

// completeArgs teaches root's commands to complete their arguments and the
// values of -o: a pipeline file for run, validate and serve, the protocol
// of test, a plugin name for plugins show.
func completeArgs(root *cobra.Command) {
	hclFile := func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return []string{"hcl"}, cobra.ShellCompDirectiveFilterFileExt
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	walk(root, func(c *cobra.Command) {
		switch c.CommandPath() {
		case "probe run", "probe validate", "probe serve":
			c.ValidArgsFunction = hclFile
		case "probe test":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 2 {
					return protos, cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		case "probe plugins show":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return slices.Sorted(maps.Keys(builtins.Plugins())), cobra.ShellCompDirectiveNoFileComp
				}
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		case "probe demo", "probe plugins", "probe version":
			c.ValidArgsFunction = cobra.NoFileCompletions
		}
		if c.Flags().Lookup("output") != nil {
			if err := c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputNames, cobra.ShellCompDirectiveNoFileComp)); err != nil {
				panic(fmt.Sprintf("complete -o of %s: %v", c.CommandPath(), err))
			}
		}
	})
}

// walk calls fn on c and every command below it.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

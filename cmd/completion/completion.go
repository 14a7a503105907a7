// Package completion implements `anklume completion bash|zsh|fish|powershell`.
package completion

import (
	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
)

// Shells are the supported shells.
var Shells = []string{"bash", "zsh", "fish", "powershell"}

// NewCmdCompletion builds the completion command.
func NewCmdCompletion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use: "completion bash|zsh|fish|powershell",
		Long: "Print the completion script for a shell. Besides commands and flags, it\n" +
			"completes the names of domains, machines, examples, roles and remotes from\n" +
			"infra.yml, and snapshot names from the Incus server.",
		Example: "  source <(anklume completion bash)\n" +
			"  anklume completion zsh > \"${fpath[1]}/_anklume\"\n" +
			"  anklume completion fish > ~/.config/fish/completions/anklume.fish",
		Short:     "Print a shell completion script",
		ValidArgs: Shells,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.ExactArgs("SHELL")(cmd, args); err != nil {
				return err
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			out := f.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return cmdutil.FlagErrorf("unsupported shell %q: expected bash, zsh, fish or powershell", args[0])
		},
	}
}

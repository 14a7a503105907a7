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
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: "Print the completion script for a shell. For example, for bash:\n\n" +
			"  source <(anklume completion bash)",
		ValidArgs: Shells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("expected one shell: bash, zsh, fish or powershell")
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

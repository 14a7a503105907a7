// Package destroy implements `anklume destroy --limit D [--limit D…]
// [--force] [--yes]` (SPEC.md §12.3): flush steps 1 and 3–7 restricted to
// the named domains, with the same protection rules and a confirmation
// even on a production host. The run itself is cmd/flush's.
package destroy

import (
	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/flush"
)

// NewCmdDestroy builds the destroy command. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdDestroy(f *cmdutil.Factory, runF func(*flush.Options) error) *cobra.Command {
	opts := flush.NewOptions(f)
	opts.Destroy = true
	cmd := &cobra.Command{
		Use: "destroy --limit DOMAIN [--limit DOMAIN]...",
		Example: "  anklume destroy --limit sandbox\n" +
			"  anklume destroy --limit lab --limit sandbox --yes",
		Short: "Destroy the Incus objects of some domains",
		Long: "Delete the instances, profiles, storage volumes, project and bridge that anklume\n" +
			"owns for the named domains. Protected instances, protected volumes and adopted\n" +
			"objects are kept unless --force. The domains stay in infra.yml: the next apply\n" +
			"creates them again.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return flush.Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Limit, "limit", nil, "destroy this domain (repeatable, at least one)")
	fl.BoolVar(&opts.Force, "force", false, "also delete protected instances, protected volumes and adopted objects")
	fl.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation")
	return cmd
}

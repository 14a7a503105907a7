// Package desktopcmd implements `anklume desktop sway|i3|tmux [--install]
// [--config PATH]`: the trust colours for the desktop (see
// internal/desktop for what the rules match and why).
package desktopcmd

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/desktop"
)

// Options are the inputs of desktop.
type Options struct {
	*snapshotcmd.Env
	Kind    string
	Install bool
	// Config is the include file --install writes (default: see
	// desktop.DefaultPath).
	Config string
	// Getenv reads XDG_CONFIG_HOME and HOME.
	Getenv func(string) string
}

// NewCmdDesktop builds the desktop command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdDesktop(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f), Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "desktop sway|i3|tmux [--install] [--config PATH]",
		Short: "Print (or install) trust-coloured window rules for sway, i3 or tmux",
		Long: "Print the window rules that tag every window of a domain with [domain] in its\n" +
			"trust colour (sway, i3), or the trust palette (tmux). Windows are recognised by\n" +
			"the app id (sway) or class (i3) \"anklume.<domain>.<machine>\" that the program\n" +
			"opening them on your machine sets (the output lists a launcher line for each\n" +
			"machine), never by their title, which the guest controls. With --install, the\n" +
			"rules are written into an anklume section of an include file (text outside it\n" +
			"is kept): ~/.config/sway/config.d/anklume.conf, ~/.config/i3/config.d/anklume.conf\n" +
			"or ~/.config/tmux/anklume.conf unless --config says otherwise.",
		Example: "  anklume desktop sway\n" +
			"  anklume desktop sway --install\n" +
			"  anklume desktop tmux --install --config ~/.tmux/anklume.conf",
		ValidArgs: desktop.Kinds,
		Args: func(c *cobra.Command, args []string) error {
			if err := cmdutil.ExactArgs("sway|i3|tmux")(c, args); err != nil {
				return err
			}
			for _, k := range desktop.Kinds {
				if args[0] == k {
					opts.Kind = k
					return nil
				}
			}
			return cmdutil.FlagErrorf("unknown desktop %q: use sway, i3 or tmux", args[0])
		},
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Install, "install", false, "write the rules into the include file instead of printing them")
	cmd.Flags().StringVar(&opts.Config, "config", "", "include file for --install")
	return cmd
}

// Run is `anklume desktop`.
func Run(opts *Options) error {
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	out, err := desktop.Render(opts.Kind, m)
	if err != nil {
		return err
	}
	if !opts.Install {
		_, err := opts.IO.Out.Write(out)
		return err
	}
	path, include := opts.Config, ""
	if path == "" {
		dir := opts.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home := opts.Getenv("HOME")
			if home == "" {
				return fmt.Errorf("neither XDG_CONFIG_HOME nor HOME is set: give --config PATH")
			}
			dir = filepath.Join(home, ".config")
		}
		path, include = desktop.DefaultPath(opts.Kind, dir)
	}
	changed, err := desktop.Install(path, out)
	if err != nil {
		return fmt.Errorf("installing the %s rules: %w", opts.Kind, err)
	}
	if !opts.Quiet() {
		verb := "unchanged"
		if changed {
			verb = "written"
		}
		fmt.Fprintf(opts.IO.Out, "desktop: %s %s\n", verb, path)
		if include != "" {
			fmt.Fprintf(opts.IO.Out, "make sure your %s configuration has: %s\n", opts.Kind, include)
		}
	}
	return nil
}

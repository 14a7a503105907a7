// Package root assembles the anklume command tree and holds Main, the one
// place that prints a command's error and turns it into an exit code.
package root

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	aicmd "github.com/anklume/anklume/cmd/ai"
	applycmd "github.com/anklume/anklume/cmd/apply"
	backupcmd "github.com/anklume/anklume/cmd/backup"
	clipboardcmd "github.com/anklume/anklume/cmd/clipboard"
	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/completion"
	consolecmd "github.com/anklume/anklume/cmd/console"
	copycmd "github.com/anklume/anklume/cmd/copy"
	dashboardcmd "github.com/anklume/anklume/cmd/dashboard"
	desktopcmd "github.com/anklume/anklume/cmd/desktop"
	destroycmd "github.com/anklume/anklume/cmd/destroy"
	dispcmd "github.com/anklume/anklume/cmd/disp"
	doctorcmd "github.com/anklume/anklume/cmd/doctor"
	flushcmd "github.com/anklume/anklume/cmd/flush"
	goldencmd "github.com/anklume/anklume/cmd/golden"
	importcmd "github.com/anklume/anklume/cmd/importcmd"
	"github.com/anklume/anklume/cmd/initcmd"
	nftablescmd "github.com/anklume/anklume/cmd/nftables"
	plancmd "github.com/anklume/anklume/cmd/plan"
	rolescmd "github.com/anklume/anklume/cmd/roles"
	"github.com/anklume/anklume/cmd/schema"
	shellcmd "github.com/anklume/anklume/cmd/shell"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	statuscmd "github.com/anklume/anklume/cmd/status"
	synccmd "github.com/anklume/anklume/cmd/sync"
	unlockcmd "github.com/anklume/anklume/cmd/unlock"
	upgradecmd "github.com/anklume/anklume/cmd/upgrade"
	"github.com/anklume/anklume/cmd/validate"
	verifycmd "github.com/anklume/anklume/cmd/verify"
	"github.com/anklume/anklume/cmd/version"
)

// NewCmdRoot builds the root command with its global flags (SPEC.md §13)
// and every subcommand.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	if f.Globals == nil {
		f.Globals = &cmdutil.GlobalOptions{}
	}
	g := f.Globals
	cmd := &cobra.Command{
		Use: "anklume",
		Example: "  anklume init --example developer\n" +
			"  anklume validate\n" +
			"  anklume plan\n" +
			"  anklume apply\n" +
			"  anklume status",
		Short: "Compile infra.yml into compartmentalised Incus infrastructure",
		Long: "anklume compiles one declarative description of a compartmentalised machine\n" +
			"(infra.yml, the PSOT) into Incus projects, bridges, profiles and instances,\n" +
			"an nftables isolation ruleset and an Ansible tree.",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.FileSet = cmd.Flags().Changed("file")
			if g.Verbose && g.Quiet {
				return cmdutil.FlagErrorf("--verbose and --quiet cannot be used together")
			}
			return nil
		},
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cmdutil.FlagError{Err: err}
	})

	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.File, "file", "f", "", "PSOT file or infra/ directory (default: ./infra.yml or ./infra/)")
	pf.StringVar(&g.BaseDir, "base-dir", "", "directory for generated files (default: the directory of the PSOT)")
	pf.StringVar(&g.Remote, "remote", "", "Incus remote to use instead of the local daemon (or ANKLUME_REMOTE)")
	pf.BoolVar(&g.NoColor, "no-color", false, "never use colour")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "print more detail")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "print errors only")

	cmd.AddCommand(
		validate.NewCmdValidate(f, nil),
		schema.NewCmdSchema(f, nil),
		version.NewCmdVersion(f, nil),
		completion.NewCmdCompletion(f),
		synccmd.NewCmdSync(f, nil),
		initcmd.NewCmdInit(f, nil),
		nftablescmd.NewCmdNftables(f, nil),
		plancmd.NewCmdPlan(f, nil),
		applycmd.NewCmdApply(f, nil),
		statuscmd.NewCmdStatus(f, nil), flushcmd.NewCmdFlush(f, nil), destroycmd.NewCmdDestroy(f, nil), unlockcmd.NewCmdUnlock(f, nil),
		importcmd.NewCmdImport(f, nil),
		snapshotcmd.NewCmdSnapshot(f, nil), dispcmd.NewCmdDisp(f, nil), goldencmd.NewCmdGolden(f, nil), backupcmd.NewCmdBackup(f, nil),
		upgradecmd.NewCmdUpgrade(f, nil), verifycmd.NewCmdVerify(f, nil), doctorcmd.NewCmdDoctor(f, nil),
		consolecmd.NewCmdConsole(f, nil), shellcmd.NewCmdShell(f, nil), dashboardcmd.NewCmdDashboard(f, nil),
		desktopcmd.NewCmdDesktop(f, nil), clipboardcmd.NewCmdClipboard(f, nil), copycmd.NewCmdCopy(f, nil),
		aicmd.NewCmdAI(f, nil), rolescmd.NewCmdRoles(f, nil),
	)
	finish(cmd, f)
	return cmd
}

// finish sets what the whole tree shares once every command is added:
// --version, one usage line per command, and the run function of the
// commands that only group subcommands.
func finish(cmd *cobra.Command, f *cmdutil.Factory) {
	cmd.Version = version.String(f.Build)
	cmd.SetVersionTemplate("anklume {{.Version}}\n")
	// A command that only groups subcommands shows "anklume snapshot
	// [command]", not also "anklume snapshot [flags]".
	cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(),
		"Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	groupCommands(cmd)
	registerCompletions(cmd, f)
}

// groupCommands gives every command that only groups subcommands the run
// function cmdutil.GroupRunE, so that an unknown subcommand is a usage
// error (exit 1) instead of the help with exit 0.
func groupCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if sub.HasSubCommands() && sub.Run == nil && sub.RunE == nil {
			sub.RunE = cmdutil.GroupRunE
			sub.Args = cobra.ArbitraryArgs
		}
		groupCommands(sub)
	}
}

// Main runs the command line args and returns the exit code. It is the one
// place that prints errors: "error: MSG" on stderr; a usage error (unknown
// flag or command, wrong arguments) adds one line, as gh does:
//
//	error: unknown flag: --nope
//	Run 'anklume plan --help' for usage.
func Main(f *cmdutil.Factory, args []string) cmdutil.ExitCode {
	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	executed, err := cmd.ExecuteC()
	if err == nil {
		return cmdutil.ExitOK
	}
	var exitErr *cmdutil.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	if errors.Is(err, cmdutil.ErrSilent) {
		return cmdutil.ExitFailure
	}
	fmt.Fprintf(f.IO.ErrOut, "error: %s\n", oneLine(err.Error()))
	var flagErr *cmdutil.FlagError
	if errors.As(err, &flagErr) || isCobraUsageError(err) {
		if executed == nil {
			executed = cmd
		}
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", executed.CommandPath())
	}
	return cmdutil.ExitFailure
}

// isCobraUsageError recognises the argument errors cobra returns without a
// type (unknown command, wrong number of arguments).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") ||
		strings.HasPrefix(msg, "accepts ") ||
		strings.HasPrefix(msg, "invalid argument ")
}

// oneLine folds cobra's unknown-command suggestions ("\n\nDid you mean
// this?\n\tplan\n") into the message: `…; did you mean "plan"?`.
func oneLine(msg string) string {
	head, rest, ok := strings.Cut(msg, "\n\nDid you mean this?\n")
	if !ok {
		return msg
	}
	var names []string
	for _, l := range strings.Split(rest, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, strconv.Quote(l))
		}
	}
	if len(names) == 0 {
		return head
	}
	return head + "; did you mean " + strings.Join(names, " or ") + "?"
}

package cmdutil

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Every argument-count error of anklume has one phrasing, whatever the
// command:
//
//	golden create: expected 1 argument (MACHINE), got 0
//	status: expected no arguments, got 1 ("web")
//	snapshot rollback: expected at most 1 argument (TIMESTAMP), got 2
//
// Main prints it with the hint to run the command's --help.

// NoArgs accepts no positional argument.
func NoArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s: expected no arguments, got %d (%q)", name(c), len(args), args[0])
	}
	return nil
}

// ExactArgs accepts exactly len(names) arguments; names are the
// placeholders of the usage line (MACHINE, FILE…).
func ExactArgs(names ...string) cobra.PositionalArgs {
	if len(names) == 0 {
		return NoArgs
	}
	return func(c *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return FlagErrorf("%s: expected %s (%s), got %d", name(c), count(len(names)), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// MaxArgs accepts up to len(names) arguments.
func MaxArgs(names ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > len(names) {
			return FlagErrorf("%s: expected at most %s (%s), got %d", name(c), count(len(names)), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// name is the command path without the program name: "golden create".
func name(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return p
}

func count(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// GroupRunE is the run function of a command that only groups
// subcommands (snapshot, golden, nftables…): without an argument it prints
// the help; an unknown subcommand is a usage error with cobra's
// suggestions, never help with exit 0.
func GroupRunE(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return c.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &FlagError{Err: fmt.Errorf("%s", msg)}
}

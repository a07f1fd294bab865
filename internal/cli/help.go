package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetd/fleet/internal/version"
)

func (a *app) cmdHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Show a list of commands or help for one command",
		Long:  "Show a list of commands or detailed help for one command.",
		Run: func(cmd *cobra.Command, args []string) {
			root := cmd.Root()
			if len(args) == 0 {
				a.printHelp(root)
				return
			}
			target := resolveCommand(root, args[0])
			if target == nil {
				a.errf("Unrecognized command: %s", args[0])
				a.exit = 1
				return
			}
			a.printHelp(target)
		},
	}
}

// printHelp writes fleet-style help for cmd (the root: global help) to
// stdout.
func (a *app) printHelp(cmd *cobra.Command) {
	w := newTabWriter(a.stdout)
	defer w.Flush()
	if !cmd.HasParent() {
		writeGlobalHelp(w, cmd)
		return
	}
	writeCommandHelp(w, cmd)
}

func writeGlobalHelp(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "NAME:\n\t%s - %s\n\n", cliName, cliDescription)
	fmt.Fprintf(w, "USAGE:\n\t%s [global options] <command> [command options] [arguments...]\n\n", cliName)
	fmt.Fprintf(w, "VERSION:\n\t%s\n\n", version.Version)
	fmt.Fprintf(w, "COMMANDS:")
	cmds := append([]*cobra.Command(nil), root.Commands()...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		fmt.Fprintf(w, "\n\t%s\t%s", c.Name(), c.Short)
	}
	fmt.Fprintf(w, "\n\nGLOBAL OPTIONS:")
	writeFlags(w, root.PersistentFlags())
	fmt.Fprintf(w, "\n\nGlobal options can also be configured via upper-case environment variables prefixed with %q\n", envPrefix)
	fmt.Fprintf(w, "For example, \"some-flag\" => \"%sSOME_FLAG\"\n\n", envPrefix)
	fmt.Fprintf(w, "Run \"%s help <command>\" for more details on a specific command.\n", cliName)
}

func writeCommandHelp(w io.Writer, cmd *cobra.Command) {
	fmt.Fprintf(w, "NAME:\n\t%s - %s\n\n", cmd.CommandPath(), cmd.Short)
	fmt.Fprintf(w, "USAGE:\n\t%s %s\n\n", parentPath(cmd), cmd.Use)
	if cmd.Long != "" {
		fmt.Fprintf(w, "DESCRIPTION:\n")
		for _, line := range strings.Split(strings.Trim(cmd.Long, "\n"), "\n") {
			if line == "" {
				fmt.Fprintln(w)
				continue
			}
			fmt.Fprintf(w, "\t%s\n", line)
		}
		fmt.Fprintln(w)
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(w, "COMMANDS:")
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				fmt.Fprintf(w, "\n\t%s\t%s", c.Name(), c.Short)
			}
		}
		fmt.Fprintf(w, "\n\n")
	}
	if cmd.HasAvailableLocalFlags() {
		fmt.Fprintf(w, "OPTIONS:")
		writeFlags(w, cmd.LocalNonPersistentFlags())
		fmt.Fprintf(w, "\n\n")
	}
	fmt.Fprintf(w, "For help on global options run \"%s help\"\n", cliName)
}

// writeFlags lists the visible flags of fs, one per line:
// "\t-l, --full=false\tusage".
func writeFlags(w io.Writer, fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		fmt.Fprintf(w, "\n\t%s=%s\t%s", name, f.DefValue, f.Usage)
	})
}

// printUsage writes the short usage of cmd (after a command-line error).
func (a *app) printUsage(cmd *cobra.Command, w io.Writer) {
	if cmd == nil || !cmd.HasParent() {
		fmt.Fprintf(w, "USAGE:\n\t%s [global options] <command> [command options] [arguments...]\n\nRun \"%s help\" for the list of commands.\n", cliName, cliName)
		return
	}
	fmt.Fprintf(w, "USAGE:\n\t%s %s\n\nRun \"%s help %s\" for more details.\n", parentPath(cmd), cmd.Use, cliName, topName(cmd))
}

// parentPath is "fleetctl" for a command, "fleetctl rollout" for a
// subcommand of rollout: what comes before its Use.
func parentPath(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return cmd.Parent().CommandPath()
	}
	return cliName
}

// topName is the name of the top-level command cmd belongs to.
func topName(cmd *cobra.Command) string {
	for cmd.HasParent() && cmd.Parent().HasParent() {
		cmd = cmd.Parent()
	}
	return cmd.Name()
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
}

package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdJournal() *cobra.Command {
	var (
		lines   int
		follow  bool
		output  string
		machine string
		sshPort int
		sudo    bool
	)
	cmd := &cobra.Command{
		Use:   "journal [-f|--follow] [--lines=N] [--output=short] [--machine=ID] UNIT",
		Short: "Print the journal of a unit in the cluster to stdout",
		Long: `Outputs the journal of a unit, fetched by fleetd from the machine it runs on
(no SSH needed). With --follow, new lines are printed until interrupted.

For a global unit every machine's lines are printed, prefixed by the short
machine ID; --machine restricts it to one machine.

Read the last 10 lines:
	fleetctl journal foo.service

Read the last 100 lines:
	fleetctl journal --lines 100 foo.service

Follow the journal:
	fleetctl journal -f foo.service`,
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "Number of recent log lines to return")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "Continuously print new entries as they are appended to the journal.")
	cmd.Flags().StringVarP(&output, "output", "o", "short", "Output mode: short, short-iso, short-precise, cat or json")
	cmd.Flags().StringVar(&machine, "machine", "", "Only this machine's journal (for global units)")
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Ignored: fleetd fetches the journal without SSH")
	cmd.Flags().BoolVar(&sudo, "sudo", false, "Ignored: fleetd reads the journal itself")
	_ = cmd.Flags().MarkHidden("ssh-port")
	_ = cmd.Flags().MarkHidden("sudo")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		c, u := a.argUnit(args, "One unit file must be provided.", unitMsgsFleet)
		if u == nil {
			return 1
		}
		name := unitName(args[0])
		if err := c.Journal(a.ctx, name, lines, follow, output, machine, a.stdout); err != nil {
			if a.ctx.Err() != nil {
				return 0
			}
			a.errf("Error retrieving journal of unit %s: %v", name, err)
			return 1
		}
		return 0
	})
	return cmd
}

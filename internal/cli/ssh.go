package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdSSH() *cobra.Command {
	var (
		machine      string
		unit         string
		forwardAgent bool
		sshPort      int
	)
	cmd := &cobra.Command{
		Use:   "ssh [--machine|--unit] {MACHINE|UNIT} [-- COMMAND...]",
		Short: "Open interactive shell on a machine in the cluster (not supported)",
		Long: `fleet's ssh command opened a shell on a machine of the cluster. This fleet
works without SSH: fleetd serves unit status and journals through its API.

Use instead:
	fleetctl status UNIT
	fleetctl journal [-f] UNIT
and your own ssh client for an interactive shell.`,
	}
	cmd.Flags().StringVarP(&machine, "machine", "m", "", "Open SSH connection to a specific machine.")
	cmd.Flags().StringVarP(&unit, "unit", "u", "", "Open SSH connection to machine running provided unit.")
	cmd.Flags().BoolVarP(&forwardAgent, "forward-agent", "A", false, "Forward local ssh-agent to target machine.")
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Connect to remote hosts over this port")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		a.errf("fleetctl ssh is not supported: this fleet works without SSH.")
		a.errf("Use 'fleetctl status UNIT' and 'fleetctl journal [-f] UNIT' to inspect units, and your own ssh client for a shell.")
		return 1
	})
	return cmd
}

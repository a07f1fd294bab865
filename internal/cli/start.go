package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdStart() *cobra.Command {
	var cf createFlags
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "start [--no-block|--block-attempts=N] [--replace] UNIT...",
		Short: "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary.",
		Long: `Start one or many units on the cluster. Select units to start by glob matching
for units in the current working directory or matching names of previously
submitted units.

For units which are not global, start operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a started state (launched, then active in systemd). This
behaviour can be configured with the respective --block-attempts and
--no-block options. Start operations on global units are always non-blocking.

While a unit waits for a machine, fleetctl prints why the scheduler cannot
place it (for example a Conflicts= or MachineMetadata= no machine satisfies).

Start a single unit:
	fleetctl start foo.service

Start an entire directory of units with glob matching:
	fleetctl start myservice/*

Start an instance of a template:
	fleetctl start web@1.service

Replace a running unit with the local file (restarts it):
	fleetctl start --replace foo.service

You may filter suitable hosts based on metadata provided by the machine.
Machine metadata is located in the fleet configuration file.`,
	}
	cf.register(cmd)
	bf.register(cmd, "launched", true)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runLoadOrStart(cmd, args, "start", cf, bf)
	})
	return cmd
}

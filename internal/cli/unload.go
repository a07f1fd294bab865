package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdUnload() *cobra.Command {
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "unload [--no-block|--block-attempts=N] UNIT...",
		Short: "Unschedule one or more units in the cluster.",
		Long: `Unload one or more units: stop them if they run and take them off their
machines, keeping them in the cluster (see destroy to remove them).

For units which are not global, unload operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) are
inactive. This behaviour can be configured with the respective
--block-attempts and --no-block options. Unload operations on global units
are always non-blocking.`,
	}
	bf.register(cmd, "unloaded", true)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runStopOrUnload(args, "unload", bf)
	})
	return cmd
}

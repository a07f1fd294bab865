package cli

import (
	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdDestroy() *cobra.Command {
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "destroy [--no-block|--block-attempts=N] UNIT...",
		Short: "Destroy one or more units in the cluster",
		Long: `Completely remove one or more running or submitted units from the cluster.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file). Units that do not exist are skipped.

Unless --no-block is given, fleetctl waits until the units are gone from the
registry (up to --block-attempts attempts of 2 s; 0 = no limit).

Destroy units with glob matching:
	fleetctl destroy foo*

Destroy everything:
	fleetctl destroy $(fleetctl list-unit-files --fields=unit --no-legend)`,
	}
	bf.register(cmd, "destroyed", true)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		c, exit := a.unitsClient(args)
		if c == nil {
			return exit
		}
		var destroyed []string
		for _, name := range unitNames(args) {
			err := c.DestroyUnit(a.ctx, name)
			if client.IsNotFound(err) {
				continue
			}
			if err != nil {
				a.errf("Error destroying units: %v", err)
				return 1
			}
			destroyed = append(destroyed, name)
			a.out("Destroyed %s", name)
		}
		if bf.noBlock || len(destroyed) == 0 {
			return 0
		}
		return a.waitForDestroyed(c, destroyed, bf.blockAttempts)
	})
	return cmd
}

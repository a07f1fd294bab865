package cli

import (
	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdListUnits() *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list-units [-l|--full] [--no-legend] [--fields=unit,machine,active,sub] [-o json]",
		Short: "List the current state of units in the cluster",
		Long: `Lists the state of all units loaded on machines in the cluster: one row per
unit and machine, with systemd's LOAD, ACTIVE and SUB states as the agents
report them. Units not loaded anywhere do not appear (see list-unit-files).
The result field (--fields=unit,machine,result) is the result of a unit's
last run (success, exit-code, signal, timeout, oom-kill, start-limit-hit),
and the exit field how its main process ended ("code=exited,
status=3/NOTIMPLEMENTED"); a Job unit that succeeded and left its machine
is listed there as inactive/dead with its result.

For easily parsable output, you can remove the column headers:
	fleetctl list-units --no-legend

Output the list without truncation:
	fleetctl list-units --full

Destroy every loaded unit:
	fleetctl destroy $(fleetctl list-units --fields=unit --no-legend)`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, defaultUnitFields, "active,exit,hash,load,machine,result,sub,unit")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runList(&f, validUnitField, nil, func(c *client.Client) *listing {
			states, err := c.UnitStates(a.ctx)
			if err != nil {
				a.errf("Error retrieving list of units from repository: %v", err)
				return nil
			}
			machines := a.machineMap()
			return &listing{json: unitStatesJSON(states, machines), rows: func(fields []string) [][]string {
				return unitRows(states, machines, fields, f.full)
			}}
		})
	})
	return cmd
}

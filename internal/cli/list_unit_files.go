package cli

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdListUnitFiles() *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list-unit-files [-l|--full] [--no-legend] [--fields=unit,hash,dstate,state,target] [-o json]",
		Short: "List the units that exist in the cluster.",
		Long: `Lists all unit files that exist in the cluster (whether or not they are loaded
onto a machine).

DSTATE is the state asked for (inactive, loaded, launched), STATE the state the
cluster reports. For global units STATE counts the machines per state, e.g.
launched(3), and TARGET is "global".

For easily parsable output, you can remove the column headers:
	fleetctl list-unit-files --no-legend

Print only some columns:
	fleetctl list-unit-files --fields=unit,desc,global`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, defaultUnitFileFields, "desc,dstate,global,hash,state,target,unit")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runList(&f, validUnitFileField, a.warnTMachine, func(c *client.Client) *listing {
			units, err := c.Units(a.ctx)
			if err != nil {
				a.errf("Error retrieving list of units from repository: %v", err)
				return nil
			}
			var states []client.UnitState
			if slices.ContainsFunc(units, isGlobalUnit) {
				states, err = c.UnitStates(a.ctx)
				if err != nil {
					a.errf("Error retrieving list of unit states: %v", err)
					return nil
				}
			}
			return &listing{json: unitFilesJSON(units, states), rows: func(fields []string) [][]string {
				return unitFileRows(units, a.machineMap(), states, fields, f.full)
			}}
		})
	})
	return cmd
}

// warnTMachine warns about fleet's deprecated "tmachine" column.
func (a *app) warnTMachine(fields []string) {
	if slices.Contains(fields, "tmachine") {
		a.errf(`WARNING: The "tmachine" field is deprecated. Use "target" instead.`)
	}
}

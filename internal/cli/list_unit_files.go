package cli

import (
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
		fields, err := f.parse(validUnitFileField)
		if err != nil {
			a.errf("%v", err)
			return 1
		}
		for _, fl := range fields {
			if fl == "tmachine" {
				a.errf(`WARNING: The "tmachine" field is deprecated. Use "target" instead.`)
				break
			}
		}
		c := a.client()
		if c == nil {
			return 1
		}
		units, err := c.Units(a.ctx)
		if err != nil {
			a.errf("Error retrieving list of units from repository: %v", err)
			return 1
		}
		var states []client.UnitState
		hasGlobal := false
		for _, u := range units {
			if isGlobalUnit(u) {
				hasGlobal = true
				break
			}
		}
		if hasGlobal {
			states, err = c.UnitStates(a.ctx)
			if err != nil {
				a.errf("Error retrieving list of unit states: %v", err)
				return 1
			}
		}
		if f.output == outputJSON {
			if err := writeJSON(a.stdout, unitFilesJSON(units, states)); err != nil {
				a.errf("%v", err)
				return 1
			}
			return 0
		}
		machines := a.machineMap()
		if err := renderTable(a.stdout, fields, unitFileRows(units, machines, states, fields, f.full), f.noLegend); err != nil {
			a.errf("%v", err)
			return 1
		}
		return 0
	})
	return cmd
}

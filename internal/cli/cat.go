package cli

import (
	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/unitfile"
)

func (a *app) cmdCat() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cat UNIT",
		Short: "Output the contents of a submitted unit",
		Long: `Outputs the unit file that is currently loaded in the cluster, as fleet
stores it (re-serialized from its options: no comments, sections merged).
Useful to verify the correct version of a unit is running.`,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		_, u := a.argUnit(args, "One unit file must be provided",
			unitMsgs{failed: "Error retrieving Unit %s: %v", missing: "Unit %s not found"})
		if u == nil {
			return 1
		}
		_, _ = a.stdout.Write(unitfile.Serialize(client.ToFleetOptions(u.Options)))
		return 0
	})
	return cmd
}

package cli

import (
	"github.com/spf13/cobra"
)

// submitWaitAttempts bounds how long submit waits for a created unit to
// show up (fleet polled forever).
const submitWaitAttempts = 5

func (a *app) cmdSubmit() *cobra.Command {
	var cf createFlags
	cmd := &cobra.Command{
		Use:   "submit [--replace] UNIT...",
		Short: "Upload one or more units to the cluster without starting them",
		Long: `Upload one or more units to the cluster without starting them. Useful for
validating units before they are started.

This operation is idempotent; if a named unit already exists in the cluster,
it will not be resubmitted, unless --replace is given and the local file
differs (only while the unit is inactive).

Submit a single unit:
	fleetctl submit foo.service

Submit a directory of units with glob matching:
	fleetctl submit myservice/*

Submit an instance of a template (from web@.service in the registry, or in
the current directory):
	fleetctl submit web@1.service`,
	}
	cf.register(cmd)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		c, args, exit := a.createClient(args, cf)
		if c == nil {
			return exit
		}
		created, err := a.lazyCreateUnits(c, "submit", args, cf.replace)
		if err != nil {
			a.errf("Error creating units: %v", err)
			return 1
		}
		return a.waitForJobStates(c, created, "inactive", submitWaitAttempts)
	})
	return cmd
}

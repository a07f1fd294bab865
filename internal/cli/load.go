package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdLoad() *cobra.Command {
	var cf createFlags
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "load [--no-block|--block-attempts=N] [--replace] UNIT...",
		Short: "Schedule one or more units in the cluster, first submitting them if necessary.",
		Long: `Load one or many units in the cluster into systemd, but do not start.

Select units to load by glob matching for units in the current working directory
or matching the names of previously submitted units.

For units which are not global, load operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a loaded state. This behaviour can be configured with the
respective --block-attempts and --no-block options. Load operations on global
units are always non-blocking.

While a unit waits for a machine, fleetctl prints why the scheduler cannot
place it.`,
	}
	cf.register(cmd)
	bf.register(cmd, "loaded", true)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runLoadOrStart(cmd, args, "load", cf, bf)
	})
	return cmd
}

// runLoadOrStart is load and start: create what is missing, set the
// desired state, wait for it (and, for start, for systemd's active state).
func (a *app) runLoadOrStart(_ *cobra.Command, args []string, command string, cf createFlags, bf blockFlags) int {
	c, args, exit := a.createClient(args, cf)
	if c == nil {
		return exit
	}
	var baseline map[string]map[string]string
	if command == "start" && !bf.noBlock {
		baseline = a.oneshotBaseline(c, unitNames(args))
	}
	if _, err := a.lazyCreateUnits(c, command, args, cf.replace); err != nil {
		a.errf("Error creating units: %v", err)
		return 1
	}
	want, verb, op := "loaded", "loading", "load"
	if command == "start" {
		want, verb, op = "launched", "starting", "start"
	}
	results, err := a.setTargetStates(c, unitNames(args), want)
	if err != nil {
		a.errf("Error %s units: %v", verb, err)
		return 1
	}
	wait := a.triggered(results, op, bf.noBlock)
	if bf.noBlock || len(wait) == 0 {
		return 0
	}
	if exit := a.waitForJobStates(c, wait, want, bf.blockAttempts); exit != 0 {
		return exit
	}
	if command == "start" {
		return a.waitForSystemdActive(c, wait, bf.blockAttempts, baseline)
	}
	return 0
}

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdStop() *cobra.Command {
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "stop [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to stop one or more units in the cluster.",
		Long: `Stop one or more units from running in the cluster, but allow them to be
started again in the future.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file).

For units which are not global, stop operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a stopped state. This behaviour can be configured with the
respective --block-attempts and --no-block options. Stop operations on global
units are always non-blocking.

Stop a single unit:
	fleetctl stop foo.service

Stop an entire directory of units with glob matching, without waiting:
	fleetctl stop --no-block myservice/*`,
	}
	bf.register(cmd, "stopped", true)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		return a.runStopOrUnload(args, "stop", bf)
	})
	return cmd
}

// findUnits fetches the named units, skipping (with a note on stderr) the
// ones that do not exist, as fleet skipped them.
func (a *app) findUnits(c *client.Client, names []string) ([]client.Unit, error) {
	var out []client.Unit
	for _, name := range names {
		u, err := c.Unit(a.ctx, name)
		if err != nil {
			return nil, fmt.Errorf("error retrieving unit %s from registry: %v", name, err)
		}
		if u == nil {
			a.errf("Unit %s does not exist.", name)
			continue
		}
		out = append(out, *u)
	}
	return out, nil
}

// runStopOrUnload is stop (desired loaded) and unload (desired inactive).
func (a *app) runStopOrUnload(args []string, command string, bf blockFlags) int {
	c, exit := a.unitsClient(args)
	if c == nil {
		return exit
	}
	want, verb := "loaded", "stopping"
	if command == "unload" {
		want, verb = "inactive", "unloading"
	}
	units, err := a.findUnits(c, unitNames(args))
	if err != nil {
		a.errf("Error %s units: %v", verb, err)
		return 1
	}
	var names []string
	for _, u := range units {
		if command == "stop" && !isGlobalUnit(u) && u.CurrentState == "inactive" {
			a.errf("Unable to stop unit %s in state %s", u.Name, u.CurrentState)
			exit = 1
			continue
		}
		names = append(names, u.Name)
	}
	results, err := a.setTargetStates(c, names, want)
	if err != nil {
		a.errf("Error %s units: %v", verb, err)
		return 1
	}
	wait := a.triggered(results, command, bf.noBlock)
	if bf.noBlock || len(wait) == 0 {
		return exit
	}
	if e := a.waitForJobStates(c, wait, want, bf.blockAttempts); e != 0 {
		return e
	}
	if command == "stop" {
		a.errf("Successfully stopped units %v.", wait)
	}
	return exit
}

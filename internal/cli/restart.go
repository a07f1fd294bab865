package cli

import (
	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdRestart() *cobra.Command {
	var bf blockFlags
	cmd := &cobra.Command{
		Use:   "restart [--block-attempts=N] UNIT...",
		Short: "Instruct systemd to restart one or more units in the cluster.",
		Long: `Restart one or more units in the cluster.

A unit that is launched is stopped (fleetctl waits until it is loaded), then
started again (fleetctl waits until it is launched and active); a unit that
is only loaded is started. Inactive units are reported and skipped.

Global units are stopped on every machine, then started again, without
SSH.

Restart a single unit:
	fleetctl restart foo.service`,
	}
	bf.register(cmd, "restarted", false)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		c, exit := a.unitsClient(args)
		if c == nil {
			return exit
		}
		units, err := a.findUnits(c, unitNames(args))
		if err != nil {
			a.errf("Error restarting units: %v", err)
			return 1
		}
		for _, u := range units {
			if e := a.restartUnit(c, u, bf.blockAttempts); e != 0 {
				exit = e
			}
		}
		return exit
	})
	return cmd
}

func (a *app) restartUnit(c *client.Client, u client.Unit, attempts int) int {
	if isGlobalUnit(u) {
		if u.DesiredState != "launched" {
			a.errf("Unable to restart global unit %s in desired state %s", u.Name, u.DesiredState)
			return 1
		}
		if err := c.SetUnitTargetState(a.ctx, u.Name, "loaded"); err != nil {
			a.errf("Error restarting unit %s: %v", u.Name, err)
			return 1
		}
		if !a.waitForGlobalInactive(c, u.Name, attempts) {
			a.errf("Error waiting for units: timed out waiting for global unit %s to stop", u.Name)
		}
		if err := c.SetUnitTargetState(a.ctx, u.Name, "launched"); err != nil {
			a.errf("Error restarting unit %s: %v", u.Name, err)
			return 1
		}
		a.out("Triggered global unit %s restart", u.Name)
		return 0
	}
	switch u.CurrentState {
	case "launched":
		if err := c.SetUnitTargetState(a.ctx, u.Name, "loaded"); err != nil {
			a.errf("Error restarting unit %s: %v", u.Name, err)
			return 1
		}
		if e := a.waitForJobStates(c, []string{u.Name}, "loaded", attempts); e != 0 {
			return e
		}
	case "loaded":
	default:
		a.errf("Unable to restart unit %s in state %s", u.Name, dash(u.CurrentState))
		return 1
	}
	baseline := a.oneshotBaseline(c, []string{u.Name})
	if err := c.SetUnitTargetState(a.ctx, u.Name, "launched"); err != nil {
		a.errf("Error restarting unit %s: %v", u.Name, err)
		return 1
	}
	if e := a.waitForJobStates(c, []string{u.Name}, "launched", attempts); e != 0 {
		return e
	}
	return a.waitForSystemdActive(c, []string{u.Name}, attempts, baseline)
}

package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) cmdStatus() *cobra.Command {
	var machine string
	var sshPort int
	cmd := &cobra.Command{
		Use:   "status [--machine=ID] UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output the status of one or more units currently running in the cluster:
systemctl status style text, fetched by fleetd from the machine the unit runs
on (no SSH needed).

For a global unit, one section per machine is printed, headed by the machine;
--machine restricts it to one machine.

Show status of a single unit:
	fleetctl status foo.service

Show status of an entire directory with glob matching:
	fleetctl status myservice/*`,
	}
	cmd.Flags().StringVar(&machine, "machine", "", "Only this machine's status (for global units)")
	cmd.Flags().IntVar(&sshPort, "ssh-port", 22, "Ignored: fleetd fetches the status without SSH")
	_ = cmd.Flags().MarkHidden("ssh-port")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		c, exit := a.unitsClient(args)
		if c == nil {
			return exit
		}
		first := true
		for _, name := range unitNames(args) {
			u, failed := a.fetchUnit(c, name, unitMsgsFleet)
			if failed {
				return 1
			}
			if u == nil {
				exit = 1
				continue
			}
			global := isGlobalUnit(*u)
			runs, isJob := a.jobFinished(c, *u)
			if isJob {
				// A Job unit's recorded runs (a succeeded one has left its
				// machine: its status text is gone).
				if !first {
					a.out("")
				}
				first = false
				for _, r := range runs {
					a.out("Job %s %s on %s at %s (result: %s)", name, r.Result, a.legend(r.MachineID, false),
						r.Finished.Local().Format("Mon 2006-01-02 15:04:05 MST"), dash(r.UnitResult))
				}
			}
			if !global && (u.CurrentState == "inactive" || u.CurrentState == "" || u.MachineID == "") {
				if isJob {
					continue
				}
				a.errf("Unit %s does not appear to be loaded.", name)
				a.printReason(name)
				exit = 1
				continue
			}
			entries, err := c.Status(a.ctx, name, machine)
			if err != nil {
				a.errf("Error retrieving status of unit %s: %v", name, err)
				exit = 1
				continue
			}
			if len(entries) == 0 {
				a.errf("Unit %s does not appear to be loaded.", name)
				exit = 1
				continue
			}
			for _, e := range entries {
				if e.Error != "" {
					a.errf("Unable to get status of unit %s on %s: %s", name, a.legend(e.MachineID, false), e.Error)
					exit = 1
					continue
				}
				if !first {
					a.out("")
				}
				first = false
				if global {
					a.out("%s", a.legend(e.MachineID, false))
				}
				if e.Text != "" {
					a.out("%s", strings.TrimRight(e.Text, "\n"))
				}
			}
		}
		return exit
	})
	return cmd
}

// printReason prints why the scheduler could not place a unit, if it said.
func (a *app) printReason(name string) {
	c := a.client()
	if c == nil {
		return
	}
	r, err := c.Reason(a.ctx, name)
	if err != nil || r == nil || r.Summary == "" {
		return
	}
	a.errf("Unit %s cannot be scheduled: %s", name, r.Summary)
	for _, id := range sortedKeys(r.PerMachine) {
		a.errf("  %s: %s", a.legend(id, false), r.PerMachine[id])
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

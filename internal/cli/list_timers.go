package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/runner"
)

// timerFields are list-timers' columns, systemctl's.
var timerFields = []string{"next", "left", "last", "passed", "unit", "activates"}

func (a *app) cmdListTimers() *cobra.Command {
	var noLegend bool
	var output string
	cmd := &cobra.Command{
		Use:   "list-timers [--no-legend] [-o json]",
		Short: "List the launched timer units and when they elapse",
		Long: `Lists the launched .timer units of the cluster, as systemctl list-timers
does: when each elapses next (NEXT, LEFT), when it last fired (LAST,
PASSED; a timer's last trigger is the cluster's, whichever machine fired
it), the timer (UNIT) and the unit it starts (ACTIVATES). Sorted by next
elapse; "-" where there is none.

Machine-readable output (with the machine running each timer):
	fleetctl list-timers -o json`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "Do not print a legend (column headers and footer)")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, `Output format: "table" or "json"`)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if err := checkOutputFormat(output); err != nil {
			a.errf("%v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		ts, err := c.Timers(a.ctx)
		if err != nil {
			a.errf("Error retrieving list of timers: %v", err)
			return 1
		}
		if output == outputJSON {
			if ts == nil {
				ts = []client.Timer{}
			}
			err = writeJSON(a.stdout, client.TimerList{Timers: ts})
		} else {
			err = renderTable(a.stdout, timerFields, timerRows(ts, time.Now()), noLegend)
			if err == nil && !noLegend {
				_, err = fmt.Fprintf(a.stdout, "\n%d timers listed.\n", len(ts))
			}
		}
		if err != nil {
			a.errf("%v", err)
			return 1
		}
		return 0
	})
	return cmd
}

// timerRows renders list-timers' rows at now, in now's time zone.
func timerRows(ts []client.Timer, now time.Time) [][]string {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(now.Location()).Format(runner.TimestampLayout)
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		left, passed := "-", "-"
		if !t.Next.IsZero() {
			left = runner.FormatTimestampLeft(t.Next, now)
		}
		if !t.Last.IsZero() {
			passed = runner.FormatTimestampRelative(t.Last, now)
		}
		rows = append(rows, []string{stamp(t.Next), left, stamp(t.Last), passed, t.Unit, dash(t.Activates)})
	}
	return rows
}

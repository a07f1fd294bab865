package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/fleet"
)

func (a *app) cmdEvents() *cobra.Command {
	var (
		output string
		since  int64
	)
	cmd := &cobra.Command{
		Use:     "events [-o json] [--since REV]",
		Aliases: []string{"watch"},
		Short:   "Stream cluster events as they happen",
		Long: `Prints cluster events as they happen, until interrupted: units submitted,
scheduled, rescheduled, started, stopped, failed and destroyed; machines
joined and lost.

Text output is one line per event:
	TIME  REV  TYPE  UNIT  MACHINE  MESSAGE
With -o json each event is one JSON object on its own line.

--since REV replays from that etcd revision (each event carries its "rev";
resume with the last one + 1).`,
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "Output format: table (one line per event) or json (one object per line)")
	cmd.Flags().Int64Var(&since, "since", 0, "Start at this etcd revision instead of now")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 0 {
			a.errf("events takes no arguments")
			return 1
		}
		if output == "text" {
			output = outputTable
		}
		if err := checkOutputFormat(output); err != nil {
			a.errf("%v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		err := c.Events(a.ctx, since, func(e fleet.Event) error {
			if output == outputJSON {
				b, err := json.Marshal(e)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "%s\n", b)
				return err
			}
			_, err := fmt.Fprintln(a.stdout, formatEvent(e))
			return err
		})
		if err != nil && a.ctx.Err() == nil {
			a.errf("Error streaming events: %v", err)
			return 1
		}
		return 0
	})
	return cmd
}

// formatEvent is the text line of an event.
func formatEvent(e fleet.Event) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	machine := ""
	if e.Machine != "" {
		machine = fleet.ShortMachineID(e.Machine)
	}
	return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s", e.Time.Local().Format("2006-01-02T15:04:05.000"), e.Rev,
		e.Type, dash(e.Unit), dash(machine), e.Message)
}

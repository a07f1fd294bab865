package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

func (a *app) cmdHistory() *cobra.Command {
	var (
		full     bool
		noLegend bool
		output   string
	)
	cmd := &cobra.Command{
		Use:   "history [-l|--full] [--no-legend] [-o json] UNIT",
		Short: "List the revisions the cluster keeps of a unit or template",
		Long: `Lists the files the cluster keeps of a unit or template (the last 10), oldest
first: their revision number, hash, when they were submitted or rolled out
and by whom. A "*" after the revision marks the one the unit has now. An
instance shows its template's revisions.

	REVISION  HASH     TIME                 USER

Go back to a revision with:
	fleetctl rollout undo UNIT --to-revision N`,
	}
	cmd.Flags().BoolVarP(&full, "full", "l", false, "Print full hashes")
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "Do not print a legend (column headers)")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, `Output format: "table" or "json"`)
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) != 1 {
			a.errf("One unit must be provided")
			return 1
		}
		if err := checkOutputFormat(output); err != nil {
			a.errf("%v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		name := unitName(args[0])
		revs, err := c.History(a.ctx, name)
		if err != nil {
			a.errf("Error retrieving the history of %s: %s", name, client.Message(err))
			return 1
		}
		if output == outputJSON {
			if revs == nil {
				revs = []client.Revision{}
			}
			err = writeJSON(a.stdout, revs)
		} else {
			err = renderTable(a.stdout, []string{"revision", "hash", "time", "user"}, historyRows(revs, full), noLegend)
		}
		if err != nil {
			a.errf("%v", err)
			return 1
		}
		return 0
	})
	return cmd
}

func historyRows(revs []client.Revision, full bool) [][]string {
	rows := make([][]string, 0, len(revs))
	for _, r := range revs {
		n := strconv.Itoa(r.Revision)
		if r.Current {
			n += "*"
		}
		rows = append(rows, []string{n, shortHash(r.Hash, full), formatTime(r.Time), dash(r.User)})
	}
	return rows
}

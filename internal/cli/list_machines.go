package cli

import (
	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

// listFlags are the flags of the list commands.
type listFlags struct {
	full     bool
	noLegend bool
	fields   string
	output   string
}

func (f *listFlags) register(cmd *cobra.Command, defaultFields, validHelp string) {
	cmd.Flags().BoolVarP(&f.full, "full", "l", false, "Do not ellipsize fields on output")
	cmd.Flags().BoolVar(&f.noLegend, "no-legend", false, "Do not print a legend (column headers)")
	cmd.Flags().StringVar(&f.fields, "fields", defaultFields, "Columns to print for each row. Choose from "+validHelp)
	cmd.Flags().StringVarP(&f.output, "output", "o", outputTable, `Output format: "table" or "json" (json ignores --fields, --full and --no-legend)`)
}

// parse checks --output and returns the --fields columns, each checked
// with valid.
func (f *listFlags) parse(valid func(string) bool) ([]string, error) {
	if err := checkOutputFormat(f.output); err != nil {
		return nil, err
	}
	return parseFields(f.fields, valid)
}

// listing is what a list command prints: json for -o json, else rows
// renders the table rows of the --fields columns.
type listing struct {
	json any
	rows func(fields []string) [][]string
}

// runList is the body of a list command: it checks the flags (valid checks
// a --fields column; note, if not nil, may warn about the columns), lets
// load fetch the listing (it prints its error and returns nil on failure)
// and prints it.
func (a *app) runList(f *listFlags, valid func(string) bool, note func(fields []string), load func(c *client.Client) *listing) int {
	fields, err := f.parse(valid)
	if err != nil {
		a.errf("%v", err)
		return 1
	}
	if note != nil {
		note(fields)
	}
	c := a.client()
	if c == nil {
		return 1
	}
	l := load(c)
	if l == nil {
		return 1
	}
	if f.output == outputJSON {
		err = writeJSON(a.stdout, l.json)
	} else {
		err = renderTable(a.stdout, fields, l.rows(fields), f.noLegend)
	}
	if err != nil {
		a.errf("%v", err)
		return 1
	}
	return 0
}

func (a *app) cmdListMachines() *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list-machines [-l|--full] [--no-legend] [--fields=machine,ip,metadata] [-o json]",
		Short: "Enumerate the current hosts in the cluster",
		Long: `Lists all active machines within the cluster. Previously active machines will
not appear in this list.

For easily parsable output, you can remove the column headers:
	fleetctl list-machines --no-legend

Output the list without truncation, with each machine's capacity (the CPUs
and memory it offers to units' [X-Fleet] CPU= and Memory= reservations;
also in -o json, and with --fields ...,capacity):
	fleetctl list-machines --full

Machine-readable output:
	fleetctl list-machines -o json`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, defaultMachineFields, "machine,ip,metadata,capacity")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if f.full && !cmd.Flags().Changed("fields") {
			// The long listing adds what each machine offers.
			f.fields = defaultMachineFields + ",capacity"
		}
		return a.runList(&f, validMachineField, nil, func(c *client.Client) *listing {
			ms, err := c.Machines(a.ctx)
			if err != nil {
				a.errf("Error retrieving list of active machines: %v", err)
				return nil
			}
			return &listing{json: machinesJSON(ms), rows: func(fields []string) [][]string {
				return machineRows(ms, fields, f.full)
			}}
		})
	})
	return cmd
}

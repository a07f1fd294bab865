package cli

import (
	"github.com/spf13/cobra"
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

func (a *app) cmdListMachines() *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list-machines [-l|--full] [--no-legend] [--fields=machine,ip,metadata] [-o json]",
		Short: "Enumerate the current hosts in the cluster",
		Long: `Lists all active machines within the cluster. Previously active machines will
not appear in this list.

For easily parsable output, you can remove the column headers:
	fleetctl list-machines --no-legend

Output the list without truncation:
	fleetctl list-machines --full

Machine-readable output:
	fleetctl list-machines -o json`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, defaultMachineFields, "machine,ip,metadata")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		fields, err := f.parse(validMachineField)
		if err != nil {
			a.errf("%v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		ms, err := c.Machines(a.ctx)
		if err != nil {
			a.errf("Error retrieving list of active machines: %v", err)
			return 1
		}
		if f.output == outputJSON {
			if err := writeJSON(a.stdout, machinesJSON(ms)); err != nil {
				a.errf("%v", err)
				return 1
			}
			return 0
		}
		if err := renderTable(a.stdout, fields, machineRows(ms, fields, f.full), f.noLegend); err != nil {
			a.errf("%v", err)
			return 1
		}
		return 0
	})
	return cmd
}

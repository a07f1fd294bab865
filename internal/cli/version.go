package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdVersion() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Long:  "Print the version and exit",
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		a.printVersion()
		return 0
	})
	return cmd
}

package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) cmdVerify() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify UNIT",
		Short: "DEPRECATED - No longer works",
		Long:  "DEPRECATED - No longer works: the signed/verified units feature was removed from fleet.",
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		a.errf("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")
		return 2
	})
	return cmd
}

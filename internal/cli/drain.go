package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) cmdDrain() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drain MACHINE...",
		Short: "Move every unit off one or more machines, and keep new ones away.",
		Long: `Mark machines as draining: the engine places no unit on them, so the units
they run are stopped there and started elsewhere (where their requirements
allow). list-machines shows draining=true in the machines' metadata. MACHINE
is a machine ID or a unique prefix of one. Undo with undrain.`,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int { return a.runDrain(args, true) })
	return cmd
}

func (a *app) cmdUndrain() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "undrain MACHINE...",
		Short: "Let units be placed on drained machines again.",
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int { return a.runDrain(args, false) })
	return cmd
}

func (a *app) runDrain(args []string, on bool) int {
	if len(args) == 0 {
		a.errf("One machine ID must be provided")
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
	code := 0
	for _, arg := range args {
		var match []string
		for _, m := range ms {
			if strings.HasPrefix(m.ID, arg) {
				match = append(match, m.ID)
			}
		}
		id := arg
		switch {
		case len(match) == 1:
			id = match[0]
		case len(match) > 1:
			a.errf("Machine ID prefix %s is ambiguous", arg)
			code = 1
			continue
		case len(arg) < 32:
			a.errf("No machine matches %s", arg)
			code = 1
			continue
		}
		if err := c.Drain(a.ctx, id, on); err != nil {
			a.errf("Error %s machine %s: %v", map[bool]string{true: "draining", false: "undraining"}[on], id, err)
			code = 1
			continue
		}
		if on {
			a.out("Machine %s is draining", id)
		} else {
			a.out("Machine %s is no longer draining", id)
		}
	}
	return code
}

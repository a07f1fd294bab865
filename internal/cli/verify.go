package cli

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/unitfile"
)

func (a *app) cmdVerify() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify UNIT_FILE...",
		Short: "Check local unit files for errors and for keys systemd would ignore",
		Long: `Check one or more local unit files the way fleetd checks a submitted unit,
without contacting the cluster: syntax, [X-Fleet] and [X-Service] rules, and
keys of [Unit], [Service] and [Install] that systemd does not know (a
misspelt ExecStrat= is accepted by submit, with a warning, but never runs).

Nothing is printed for a good file; each problem is printed to stderr as
"UNIT: problem", and the exit status is 1 if any file has one.

(fleet's verify checked signed units, a feature fleet removed.)

Check a unit file:
	fleetctl verify foo.service`,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			a.errf("One or more unit files must be provided.")
			return 1
		}
		exit := 0
		for _, arg := range dedupArgs(args) {
			for _, p := range a.verifyFile(arg) {
				a.errf("%s", p)
				exit = 1
			}
		}
		return exit
	})
	return cmd
}

// verifyFile lists the problems of the local unit file arg (the file as
// named, else with ".service" appended as other commands do).
func (a *app) verifyFile(arg string) []string {
	name := unitName(arg)
	path := arg
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		path = unitArgPath(arg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{name + ": " + err.Error()}
	}
	opts, err := unitfile.Parse(data)
	if err != nil {
		return []string{name + ": " + path + ": " + err.Error()}
	}
	var out []string
	if err := unitfile.ValidateName(name); err != nil {
		out = append(out, name+": "+err.Error())
	}
	if err := unitfile.ValidateOptions(name, opts); err != nil {
		out = append(out, name+": "+err.Error())
	}
	if _, warnings, _ := unitfile.Requirements(name, opts); len(warnings) > 0 {
		for _, w := range warnings {
			out = append(out, name+": "+w)
		}
	}
	out = append(out, unitfile.UnknownKeyWarnings(name, opts)...)
	return out
}

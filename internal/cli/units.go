package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// unitName turns a unit argument into a unit name as fleetctl does: the
// last path element, ".service" appended unless it has a unit suffix.
func unitName(arg string) string { return unitfile.NormalizeArg(arg) }

// unitArgPath is the local file a unit argument refers to: the argument
// itself, with ".service" appended when the name got it.
func unitArgPath(arg string) string {
	base := filepath.Base(arg)
	name := unitName(arg)
	if name != base {
		return arg + strings.TrimPrefix(name, base)
	}
	return arg
}

// templateOf returns the template name of an instance name
// (web@1.service ⇒ web@.service), or "" if name is not an instance.
func templateOf(name string) string {
	n := unitfile.ParseName(name)
	if !n.IsInstance || n.Prefix == "" {
		return ""
	}
	return n.TemplateName()
}

// readUnitFile parses a local unit file. A missing file is (nil, nil).
func readUnitFile(path string) ([]fleet.UnitOption, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	opts, err := unitfile.Parse(data)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = []fleet.UnitOption{}
	}
	return opts, nil
}

// localUnit is the local definition of a unit argument.
type localUnit struct {
	path     string // file read
	template bool   // path is the instance's template
	options  []fleet.UnitOption
}

// findLocalUnit looks for the unit file of arg on disk: the file itself,
// else, for an instance, its template "a@.service" in the same directory.
// It returns nil when neither exists.
func findLocalUnit(arg string) (*localUnit, error) {
	p := unitArgPath(arg)
	opts, err := readUnitFile(p)
	if err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from file: %v", unitName(arg), err)
	}
	if opts != nil {
		return &localUnit{path: p, options: opts}, nil
	}
	tmpl := templateOf(unitName(arg))
	if tmpl == "" {
		return nil, nil
	}
	tp := filepath.Join(filepath.Dir(p), tmpl)
	opts, err = readUnitFile(tp)
	if err != nil {
		return nil, fmt.Errorf("unable to load template Unit(%s) from file: %v", tmpl, err)
	}
	if opts != nil {
		return &localUnit{path: tp, template: true, options: opts}, nil
	}
	return nil, nil
}

// replaceAllowed lists, per command, the desired states in which --replace
// may overwrite a unit.
func replaceAllowed(command, desired string) bool {
	switch command {
	case "submit":
		return desired == "inactive"
	case "load":
		return desired == "inactive" || desired == "loaded"
	case "start":
		return true
	}
	return false
}

// createFlags are the flags of submit, load and start.
type createFlags struct {
	replace bool
	sign    bool
}

func (f *createFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.replace, "replace", false, "Replace the unit in the cluster if the local unit file differs (restarts it)")
	cmd.Flags().BoolVar(&f.sign, "sign", false, "DEPRECATED - this option cannot be used")
	_ = cmd.Flags().MarkHidden("sign")
}

// blockFlags are the waiting flags of the state-changing commands.
type blockFlags struct {
	noBlock       bool
	blockAttempts int
}

func (f *blockFlags) register(cmd *cobra.Command, what string, withNoBlock bool) {
	cmd.Flags().IntVar(&f.blockAttempts, "block-attempts", 0, "Wait until the units are "+what+", performing up to N attempts of 2 s before giving up. A value of 0 indicates no limit. Does not apply to global units.")
	if withNoBlock {
		cmd.Flags().BoolVar(&f.noBlock, "no-block", false, "Do not wait until the units are "+what+" before exiting. Always the case for global units.")
	}
}

// unitsClient begins a command on the units args names: with none it
// says so (exit 0, as fleet), else it returns the API client and exit 0.
// A nil client ends the command with the exit code returned.
func (a *app) unitsClient(args []string) (*client.Client, int) {
	if len(args) == 0 {
		a.errf("No units given")
		return nil, 0
	}
	c := a.client()
	if c == nil {
		return nil, 1
	}
	return c, 0
}

// createClient is unitsClient for the commands that create units (submit,
// load, start): it first refuses fleet's deprecated --sign (exit 2), and
// returns args without those naming a unit already named.
func (a *app) createClient(args []string, cf createFlags) (*client.Client, []string, int) {
	if cf.sign {
		a.errf("WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")
		return nil, nil, 2
	}
	c, exit := a.unitsClient(args)
	return c, dedupArgs(args), exit
}

// unitMsgs word the errors of fetching a unit by name: fleet's commands
// word them differently, and fleetctl keeps their words.
type unitMsgs struct {
	failed  string // format of a failed fetch: name, error
	missing string // format of a unit that does not exist: name
}

// unitMsgsFleet are the words of most commands.
var unitMsgsFleet = unitMsgs{failed: "Error retrieving unit %s: %v", missing: "Unit %s does not exist."}

// fetchUnit fetches the unit name, printing m's error when that fails
// (failed) or the unit does not exist (nil unit).
func (a *app) fetchUnit(c *client.Client, name string, m unitMsgs) (u *client.Unit, failed bool) {
	u, err := c.Unit(a.ctx, name)
	if err != nil {
		a.errf(m.failed, name, err)
		return nil, true
	}
	if u == nil {
		a.errf(m.missing, name)
	}
	return u, false
}

// argUnit begins a command on the one unit args must name (else it prints
// usage): it returns the API client and the unit, or a nil unit when the
// command is to end with exit 1 (the error printed, worded by m).
func (a *app) argUnit(args []string, usage string, m unitMsgs) (*client.Client, *client.Unit) {
	if len(args) != 1 {
		a.errf("%s", usage)
		return nil, nil
	}
	c := a.client()
	if c == nil {
		return nil, nil
	}
	u, _ := a.fetchUnit(c, unitName(args[0]), m)
	return c, u
}

// lazyCreateUnits makes sure every argument's unit exists in the registry:
// (1) already there (warn if the local file differs; --replace overwrites
// it when the desired state allows), (2) a local file, (3) for an instance,
// its template from the registry, else a local template file next to the
// argument. It returns the names of the units it created.
func (a *app) lazyCreateUnits(c *client.Client, command string, args []string, replace bool) ([]string, error) {
	var created []string
	for _, arg := range args {
		name := unitName(arg)
		u, err := c.Unit(a.ctx, name)
		if err != nil {
			return created, fmt.Errorf("error retrieving Unit(%s) from Registry: %v", name, err)
		}
		if u != nil {
			replaced, err := a.checkRegistryUnit(c, command, arg, u, replace)
			if err != nil {
				return created, err
			}
			if replaced {
				created = append(created, name)
			}
			continue
		}
		opts, err := a.unitOptionsForCreate(c, arg)
		if err != nil {
			return created, err
		}
		if err := a.createUnit(c, name, opts); err != nil {
			return created, err
		}
		created = append(created, name)
	}
	return created, nil
}

// checkRegistryUnit compares a unit already in the registry with its local
// file (or local template), warns or replaces, and reports whether it
// replaced it.
func (a *app) checkRegistryUnit(c *client.Client, command, arg string, u *client.Unit, replace bool) (bool, error) {
	local, err := findLocalUnit(arg)
	if err != nil {
		if replace {
			return false, err
		}
		a.debugf("%v", err)
		return false, nil
	}
	if local == nil {
		a.debugf("Found Unit(%s) in Registry, no local file to compare", u.Name)
		return false, nil
	}
	if unitfile.Hash(local.options) == unitHash(*u) {
		if replace {
			a.out("Found same Unit(%s) in Registry, nothing to do", u.Name)
		}
		return false, nil
	}
	if !replace {
		kind := "unit file"
		if local.template {
			kind = "template unit file"
		}
		a.errf("WARNING: Unit %s in registry differs from local %s %s. Add --replace to override.", u.Name, kind, local.path)
		return false, nil
	}
	if !replaceAllowed(command, u.DesiredState) {
		a.errf("Warning: can not replace Unit(%s) in state '%s', use the appropriate command", u.Name, u.DesiredState)
		return false, nil
	}
	if err := a.createUnit(c, u.Name, local.options); err != nil {
		return false, err
	}
	a.debugf("Replaced Unit(%s) in Registry with %s", u.Name, local.path)
	return true, nil
}

// unitOptionsForCreate finds the definition of a unit that is not in the
// registry.
func (a *app) unitOptionsForCreate(c *client.Client, arg string) ([]fleet.UnitOption, error) {
	name := unitName(arg)
	p := unitArgPath(arg)
	opts, err := readUnitFile(p)
	if err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from file: %v", name, err)
	}
	if opts != nil {
		return opts, nil
	}
	tmpl := templateOf(name)
	if tmpl == "" {
		return nil, fmt.Errorf("unable to find Unit(%s) in Registry or on filesystem", name)
	}
	tu, err := c.Unit(a.ctx, tmpl)
	if err != nil {
		return nil, fmt.Errorf("error retrieving template Unit(%s) from Registry: %v", tmpl, err)
	}
	if tu != nil {
		if local, lerr := findLocalUnit(arg); lerr == nil && local != nil && local.template &&
			unitfile.Hash(local.options) != unitHash(*tu) {
			a.errf("WARNING: Unit %s in registry differs from local template unit file %s. Add --replace to override.", tmpl, local.path)
		}
		return client.ToFleetOptions(tu.Options), nil
	}
	tp := filepath.Join(filepath.Dir(p), tmpl)
	opts, err = readUnitFile(tp)
	if err != nil {
		return nil, fmt.Errorf("unable to load template Unit(%s) from file: %v", tmpl, err)
	}
	if opts == nil {
		return nil, fmt.Errorf("unable to find Unit(%s) or template Unit(%s) in Registry or on filesystem", name, tmpl)
	}
	return opts, nil
}

func (a *app) createUnit(c *client.Client, name string, opts []fleet.UnitOption) error {
	if _, warnings, _ := unitfile.Requirements(name, opts); len(warnings) > 0 {
		for _, w := range warnings {
			a.errf("WARNING: Unit %s: %s", name, w)
		}
	}
	u := &client.Unit{Name: name, Options: client.FromFleetOptions(opts)}
	warnings, err := c.CreateUnitWarnings(a.ctx, u)
	if err != nil {
		return fmt.Errorf("failed creating unit %s: %v", name, err)
	}
	a.debugf("Created Unit(%s) in Registry", name)
	// The server names keys systemd would ignore; an older fleetd does
	// not, so the local check is printed too (each warning once).
	seen := map[string]bool{}
	for _, w := range append(unitfile.UnknownKeyWarnings(name, opts), warnings...) {
		if seen[w] {
			continue
		}
		seen[w] = true
		a.errf("WARNING: %s", unitWarning(name, w))
	}
	return nil
}

// unitWarning turns "x.service: text" into fleetctl's "Unit x.service: text".
func unitWarning(name, w string) string {
	if strings.HasPrefix(w, name+": ") {
		return "Unit " + w
	}
	return "Unit " + name + ": " + w
}

// targetResult is a unit whose desired state was looked at by
// setTargetStates.
type targetResult struct {
	unit   client.Unit
	global bool
}

// setTargetStates sets the desired state of the named units (skipping
// those already there) and returns them all, in order.
func (a *app) setTargetStates(c *client.Client, names []string, state string) ([]targetResult, error) {
	var out []targetResult
	for _, name := range names {
		u, err := c.Unit(a.ctx, name)
		if err != nil {
			return out, fmt.Errorf("error retrieving unit %s from registry: %v", name, err)
		}
		if u == nil {
			return out, fmt.Errorf("unable to find unit %s", name)
		}
		if u.DesiredState != state {
			a.debugf("Setting Unit(%s) target state to %s", name, state)
			if err := c.SetUnitTargetState(a.ctx, name, state); err != nil {
				return out, err
			}
			u.DesiredState = state
		}
		out = append(out, targetResult{unit: *u, global: isGlobalUnit(*u)})
	}
	return out, nil
}

// triggered reports the global units among results as triggered for op
// (there is no job state to wait for) and returns the names of the others,
// which are reported as triggered too when noBlock is set.
func (a *app) triggered(results []targetResult, op string, noBlock bool) []string {
	var wait []string
	for _, r := range results {
		if r.global {
			a.out("Triggered global unit %s %s", r.unit.Name, op)
			continue
		}
		wait = append(wait, r.unit.Name)
	}
	if noBlock {
		for _, name := range wait {
			a.out("Triggered unit %s %s", name, op)
		}
	}
	return wait
}

// unitNames normalizes unit arguments, dropping duplicates.
func unitNames(args []string) []string {
	out := dedupArgs(args)
	for i, arg := range out {
		out[i] = unitName(arg)
	}
	return out
}

// dedupArgs drops arguments naming a unit already named.
func dedupArgs(args []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, arg := range args {
		n := unitName(arg)
		if !seen[n] {
			seen[n] = true
			out = append(out, arg)
		}
	}
	return out
}

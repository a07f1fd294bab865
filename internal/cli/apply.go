package cli

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Plan actions of apply.
const (
	planCreate    = "create"
	planRollout   = "rollout"
	planReplace   = "replace"
	planDestroy   = "destroy"
	planUnchanged = "unchanged"
)

// applyUnitSuffixes are the file name suffixes apply takes from a
// directory: fleet's unit types.
var applyUnitSuffixes = []string{".automount", ".busname", ".device", ".mount", ".path", ".scope", ".service",
	".slice", ".snapshot", ".socket", ".swap", ".target", ".timer"}

// planItem is what apply does to one unit.
type planItem struct {
	action  string
	name    string
	path    string             // local file (not for destroy)
	options []fleet.UnitOption // local options (not for destroy)
	cluster *client.Unit       // nil for create
	targets int                // rollout: how many targets
	global  bool
}

func (p planItem) String() string {
	if p.action == planRollout {
		r := rollout.Rollout{Spec: rollout.Spec{Unit: p.name, Global: p.global}}
		return fmt.Sprintf("%s %s (%s)", p.action, p.name, targetCount(r, p.targets))
	}
	return p.action + " " + p.name
}

func (a *app) cmdApply() *cobra.Command {
	var (
		gf     gateFlags
		dryRun bool
		prune  bool
	)
	cmd := &cobra.Command{
		Use:   "apply [--dry-run] [--prune] [--max-parallel N] [--min-healthy-time D] [--healthy-deadline D] [--auto-revert] [--no-block] DIR|FILE...",
		Short: "Make the cluster's units match a directory of unit files",
		Long: `Make the cluster's units match unit files: FILE, or every unit file of DIR
(files named *.service, *.socket, *.timer, ...; not recursive). Per unit:

	create     not in the cluster: submitted (not started)
	rollout    changed, and something runs it (a template's launched instances,
	           a launched unit, a global unit's machines): rolled out batch by
	           batch as fleetctl rollout does, with the same gate flags
	replace    changed, nothing runs it: its file is replaced (desired state kept)
	unchanged  same file (hash) as in the cluster: nothing is written
	destroy    with --prune, a unit of the cluster that is not given (instances
	           of a given template are kept)

The plan is printed first, then carried out: rollouts one after another,
each followed until it is over unless --no-block is given. --dry-run prints
the plan only. Applying the same files twice changes nothing the second time.
The exit status is 1 if anything failed.

Preview, then apply a directory:
	fleetctl apply --dry-run units/
	fleetctl apply units/`,
	}
	gf.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "Print the plan and change nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "Destroy the cluster's units that are not given")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			a.errf("One directory or unit file must be provided")
			return 1
		}
		if err := gf.check(); err != nil {
			a.errf("Error: %v", err)
			return 1
		}
		locals, err := readApplyArgs(args)
		if err != nil {
			a.errf("Error: %v", err)
			return 1
		}
		c := a.client()
		if c == nil {
			return 1
		}
		plan, err := a.applyPlan(c, locals, prune)
		if err != nil {
			a.errf("Error: %v", err)
			return 1
		}
		counts := map[string]int{}
		for _, p := range plan {
			counts[p.action]++
			a.out("%s", p)
		}
		a.out("apply: %d to create, %d to roll out, %d to replace, %d to destroy, %d unchanged",
			counts[planCreate], counts[planRollout], counts[planReplace], counts[planDestroy], counts[planUnchanged])
		if dryRun {
			return 0
		}
		exit := 0
		for _, p := range plan {
			e := a.applyItem(c, p, gf)
			if e == exitInterrupted {
				return e
			}
			exit = max(exit, e)
		}
		return exit
	})
	return cmd
}

// localFile is one unit file given to apply.
type localFile struct {
	name, path string
	options    []fleet.UnitOption
}

// readApplyArgs reads the unit files args name (directories: their unit
// files), sorted by unit name. A unit given twice is an error.
func readApplyArgs(args []string) ([]localFile, error) {
	type given struct{ name, path string }
	var paths []given
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		if err == nil && st.IsDir() {
			entries, err := os.ReadDir(arg)
			if err != nil {
				return nil, err
			}
			n := 0
			for _, e := range entries {
				if e.IsDir() || !hasUnitSuffix(e.Name()) {
					continue
				}
				paths = append(paths, given{e.Name(), filepath.Join(arg, e.Name())})
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("no unit files in directory %s", arg)
			}
			continue
		}
		paths = append(paths, given{unitName(arg), unitArgPath(arg)})
	}
	seen := map[string]string{}
	var out []localFile
	for _, g := range paths {
		name, p := g.name, g.path
		if err := unitfile.ValidateName(name); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		if prev, ok := seen[name]; ok {
			if prev == p {
				continue
			}
			return nil, fmt.Errorf("unit %s is given twice: %s and %s", name, prev, p)
		}
		seen[name] = p
		opts, err := readUnitFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading unit file %s: %v", p, err)
		}
		if opts == nil {
			return nil, fmt.Errorf("unable to find unit file %s", p)
		}
		out = append(out, localFile{name: name, path: p, options: opts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func hasUnitSuffix(name string) bool {
	for _, s := range applyUnitSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return true
		}
	}
	return false
}

// applyPlan decides what to do with each local file (and, with prune,
// each cluster unit not given).
func (a *app) applyPlan(c *client.Client, locals []localFile, prune bool) ([]planItem, error) {
	units, err := c.Units(a.ctx)
	if err != nil {
		return nil, fmt.Errorf("retrieving the cluster's units: %v", err)
	}
	byName := make(map[string]*client.Unit, len(units))
	for i := range units {
		byName[units[i].Name] = &units[i]
	}
	given := map[string]bool{}
	var plan []planItem
	for _, l := range locals {
		given[l.name] = true
		p := planItem{name: l.name, path: l.path, options: l.options, cluster: byName[l.name]}
		switch {
		case p.cluster == nil:
			p.action = planCreate
		case unitfile.Hash(l.options) == unitHash(*p.cluster):
			p.action = planUnchanged
		default:
			p.global = isGlobalUnit(*p.cluster)
			n, err := a.launchedTargets(c, *p.cluster, units)
			if err != nil {
				return nil, err
			}
			p.targets = n
			p.action = planReplace
			if n > 0 {
				p.action = planRollout
			}
		}
		plan = append(plan, p)
	}
	if prune {
		for _, u := range sortUnits(units) {
			if given[u.Name] {
				continue
			}
			if tmpl := templateOf(u.Name); tmpl != "" && given[tmpl] {
				continue
			}
			plan = append(plan, planItem{action: planDestroy, name: u.Name, cluster: byName[u.Name]})
		}
	}
	return plan, nil
}

// launchedTargets counts what a rollout of u would move: a template's
// launched instances, a launched global unit's machines (those reporting
// it), a launched unit.
func (a *app) launchedTargets(c *client.Client, u client.Unit, units []client.Unit) (int, error) {
	switch {
	case fleet.IsTemplate(u.Name):
		n := 0
		for _, in := range units {
			if templateOf(in.Name) == u.Name && in.DesiredState == string(fleet.JobStateLaunched) {
				n++
			}
		}
		return n, nil
	case u.DesiredState != string(fleet.JobStateLaunched):
		return 0, nil
	case isGlobalUnit(u):
		states, err := c.UnitStatesFiltered(a.ctx, u.Name, "")
		if err != nil {
			return 0, fmt.Errorf("retrieving the states of %s: %v", u.Name, err)
		}
		machines := map[string]bool{}
		for _, s := range states {
			machines[s.MachineID] = true
		}
		return len(machines), nil
	}
	return 1, nil
}

// applyItem carries out one plan item and returns its exit code.
func (a *app) applyItem(c *client.Client, p planItem, gf gateFlags) int {
	switch p.action {
	case planCreate:
		if err := a.createUnit(c, p.name, p.options); err != nil {
			a.errf("Error creating %s: %v", p.name, err)
			return 1
		}
		a.out("Created %s", p.name)
	case planReplace:
		u := &client.Unit{Name: p.name, Options: client.FromFleetOptions(p.options), DesiredState: p.cluster.DesiredState}
		if err := c.CreateUnit(a.ctx, u); err != nil {
			a.errf("Error replacing %s: %s", p.name, client.Message(err))
			return 1
		}
		a.out("Replaced %s", p.name)
	case planRollout:
		r, err := c.StartRollout(a.ctx, p.name, client.FromFleetOptions(p.options), gf.gates())
		if client.IsCode(err, http.StatusUnprocessableEntity) {
			// What ran it stopped meanwhile: the file is replaced, as
			// planned for a unit nothing runs.
			a.out("%s", client.Message(err))
			return 0
		}
		return a.rolloutStarted(c, p.name, r, err, gf.noBlock)
	case planDestroy:
		err := c.DestroyUnit(a.ctx, p.name)
		if err != nil && !client.IsNotFound(err) {
			a.errf("Error destroying %s: %s", p.name, client.Message(err))
			return 1
		}
		a.out("Destroyed %s", p.name)
	}
	return 0
}

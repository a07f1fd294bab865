package agent

import (
	"context"
	"maps"
	"slices"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/unitfile"
)

// adoptRunning takes over what the runner already holds when the agent
// starts: units a previous fleetd left running and the runner adopted.
// They count as loaded (and launched if up), so the first reconcile keeps
// the ones still scheduled here with the same hash untouched, unloads the
// others and reloads those whose hash changed.
func (a *Agent) adoptRunning() {
	a.round.Lock() // before any round; Reconcile may be called meanwhile
	defer a.round.Unlock()
	states := a.cfg.Runner.States()
	a.mu.Lock()
	adopted := adopt(states, a.loaded)
	maps.Copy(a.loaded, adopted)
	a.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(adopted)) {
		st := states[name]
		a.log.Info("adopting unit left running by an earlier fleetd", "unit", name, "state", st.ActiveState+"/"+st.SubState, "main_pid", st.MainPID)
	}
}

// adopt returns the units of states the agent does not know yet (not in
// loaded), as loaded units: launched if active, activating or reloading,
// loaded otherwise; their options are unknown (nil: not fenced). Pure.
func adopt(states map[string]runner.State, loaded map[string]loadedUnit) map[string]loadedUnit {
	out := make(map[string]loadedUnit)
	for name, st := range states {
		if _, ok := loaded[name]; ok {
			continue
		}
		js := fleet.JobStateLoaded
		switch st.ActiveState {
		case "active", "activating", "reloading":
			js = fleet.JobStateLaunched
		}
		out[name] = loadedUnit{hash: st.Hash, jobState: js}
	}
	return out
}

// LeaseLost is called when the machine's lease is gone or about to expire
// unrenewed: etcd cannot be reached, or the machine was cut off for
// agent_ttl. Losing contact with etcd is not proof that a unit moved, so
// units keep running, except those that opted into fencing with
// [X-Fleet] StopOnDisconnect=true: they are stopped at once (never two
// copies). Once the machine has a lease again, the next reconcile reads the
// schedule afresh and, before anything else, stops the copies that were
// placed elsewhere meanwhile.
func (a *Agent) LeaseLost(ctx context.Context) {
	a.mu.Lock()
	a.leaseLost = true
	a.lostGen++ // a round in flight starts nothing more (execute)
	var fenced []string
	for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
		if StopOnDisconnect(a.loaded[name].options) {
			fenced = append(fenced, name)
		}
	}
	a.mu.Unlock()
	a.log.Warn("machine lease lost: units keep running until the schedule, read again once etcd answers, says otherwise; stopping those with StopOnDisconnect=true", "stopping", len(fenced))
	for _, name := range fenced {
		if err := a.cfg.Runner.Stop(ctx, name); err != nil {
			a.log.Warn("stopping unit after lease loss", "unit", name, "err", err)
		}
	}
}

// StopOnDisconnect reports whether a unit's options set [X-Fleet]
// StopOnDisconnect= to true (unitfile's rule, as for Global=).
func StopOnDisconnect(opts []fleet.UnitOption) bool {
	req, _, err := unitfile.Requirements("", opts)
	return err == nil && req.StopOnDisconnect
}

// fenceAfterStart stops a unit the round just started if it has
// StopOnDisconnect and LeaseLost was called since the round's inputs were
// read: LeaseLost may have stopped it before the start reached the runner.
// (LeaseLost bumps lostGen before it lists the units to stop, and the round
// checks lostGen after the start: one of the two stops it.)
func (a *Agent) fenceAfterStart(ctx context.Context, name string, gen uint64) {
	a.mu.Lock()
	fenced := a.lostGen != gen && StopOnDisconnect(a.loaded[name].options)
	a.mu.Unlock()
	if !fenced {
		return
	}
	if err := a.cfg.Runner.Stop(ctx, name); err != nil {
		a.log.Warn("stopping unit after lease loss", "unit", name, "err", err)
	}
}

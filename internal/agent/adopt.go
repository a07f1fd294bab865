package agent

import (
	"context"
	"maps"
	"slices"

	"github.com/fleetd/fleet/internal/store/etcdkv"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// adoptRunning takes over what the runner already holds when the agent
// starts: units a previous fleetd left running and the runner adopted.
// They count as loaded (and launched if up), so the first reconcile keeps
// the ones still scheduled here with the same hash untouched, unloads the
// others and reloads those whose hash changed.
func (a *Agent) adoptRunning() {
	states := a.cfg.Runner.States()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(states)) {
		if _, ok := a.loaded[name]; ok {
			continue
		}
		st := states[name]
		js := fleet.JobStateLoaded
		switch st.ActiveState {
		case "active", "activating", "reloading":
			js = fleet.JobStateLaunched
		}
		a.loaded[name] = loadedUnit{hash: st.Hash, jobState: js}
		a.log.Info("adopting unit left running by an earlier fleetd", "unit", name, "state", st.ActiveState+"/"+st.SubState, "main_pid", st.MainPID)
	}
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
	var fenced []string
	for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
		if StopOnDisconnect(a.loaded[name].options) {
			fenced = append(fenced, name)
		}
	}
	a.mu.Unlock()
	a.leaseLost.Store(true)
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

// afterLeaseLossLocked marks the units LeaseLost stopped (the fenced ones)
// stopped, so that they start again only if the schedule says so once a
// lease is back; the others were left running and the reconcile keeps or
// stops them by the schedule.
func (a *Agent) afterLeaseLossLocked(lease etcdkv.LeaseID) {
	for name, l := range a.loaded {
		if l.jobState == fleet.JobStateLaunched && StopOnDisconnect(l.options) {
			l.jobState = fleet.JobStateLoaded
			a.loaded[name] = l
		}
	}
	if lease != 0 {
		a.leaseLost.Store(false)
	}
}

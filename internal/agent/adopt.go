package agent

import (
	"context"
	"maps"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
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

// LeaseLost stops every unit of this machine at once: the machine's lease
// is gone, so the engine is placing its units elsewhere and these copies
// are stale. Until the machine has a lease again the agent starts nothing;
// then it starts what the schedule, read afresh, says.
func (a *Agent) LeaseLost(ctx context.Context) {
	names := slices.Sorted(maps.Keys(a.cfg.Runner.States()))
	a.leaseLost.Store(true)
	a.log.Warn("machine lease lost: stopping every unit here (they are being rescheduled)", "units", len(names))
	for _, name := range names {
		if err := a.cfg.Runner.Stop(ctx, name); err != nil {
			a.log.Warn("stopping unit after lease loss", "unit", name, "err", err)
		}
	}
}

// afterLeaseLossLocked marks every unit stopped (LeaseLost stopped them),
// so that they are started again only if the schedule says so once a lease
// is back.
func (a *Agent) afterLeaseLossLocked(lease clientv3.LeaseID) {
	for name, l := range a.loaded {
		if l.jobState == fleet.JobStateLaunched {
			l.jobState = fleet.JobStateLoaded
			a.loaded[name] = l
		}
	}
	if lease != 0 {
		a.leaseLost.Store(false)
	}
}

package engine

import (
	"github.com/fleetd/fleet/internal/schedule"
)

// reasonDraining is the per-machine reason for a draining machine.
const reasonDraining = "machine is draining"

// dropDrained removes draining machines from the scheduler's input (every
// unit on them then moves, as if they were gone) and returns their IDs.
func dropDrained(in *schedule.Snapshot) []string {
	var drained []string
	kept := in.Machines[:0:0]
	for _, m := range in.Machines {
		if m.Draining() {
			drained = append(drained, m.ID)
			continue
		}
		kept = append(kept, m)
	}
	if len(drained) > 0 {
		in.Machines = kept
	}
	return drained
}

// explainDrained adds the draining machines to the reasons of units left
// without a machine.
func explainDrained(res schedule.Result, drained []string) {
	explainMachines(res, drained, reasonDraining)
}

// explainMachines sets why each of ids rejected the units left without a
// machine.
func explainMachines(res schedule.Result, ids []string, why string) {
	if len(ids) == 0 {
		return
	}
	for name, r := range res.Reasons {
		pm := make(map[string]string, len(r.PerMachine)+len(ids))
		for k, v := range r.PerMachine {
			pm[k] = v
		}
		for _, id := range ids {
			pm[id] = why
		}
		r.PerMachine = pm
		res.Reasons[name] = r
	}
}

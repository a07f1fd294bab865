package events

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/store/keys"
)

// schedValue is the part of a schedule/ value events need.
type schedValue struct {
	DesiredState fleet.JobState `json:"desiredState"`
}

// Derive returns the events that one etcd change under layout's prefix
// means. For a delete, e.KV holds only the key and the revision; e.Prev is
// the previous value (nil if none or unknown).
func Derive(layout keys.Layout, e etcdkv.Event) []fleet.Event {
	k, ok := layout.Parse(e.KV.Key)
	if !ok {
		return nil
	}
	kv, prev := &e.KV, e.Prev
	ev := fleet.Event{Rev: kv.ModRev}
	del := e.Type == etcdkv.EventDelete
	switch k.Kind {
	case keys.Unit:
		return deriveUnit(ev, k.Unit, del, kv, prev)
	case keys.Machine:
		return deriveMachine(ev, k.Machine, del, kv, prev)
	case keys.Schedule:
		machine, unit := k.Machine, k.Unit
		ev.Unit, ev.Machine = unit, machine
		if del {
			ev.Type = fleet.EventUnitUnscheduled
			ev.Message = fmt.Sprintf("%s unscheduled from %s", unit, fleet.ShortMachineID(machine))
			return []fleet.Event{ev}
		}
		if prev != nil {
			return nil // desired state or hash update of a placement
		}
		var v schedValue
		_ = json.Unmarshal(kv.Value, &v)
		ev.Type = fleet.EventUnitScheduled
		ev.State = string(v.DesiredState)
		ev.Message = fmt.Sprintf("%s scheduled on %s", unit, fleet.ShortMachineID(machine))
		return []fleet.Event{ev}
	case keys.State:
		if del {
			return nil
		}
		return deriveState(ev, k.Unit, k.Machine, kv, prev)
	case keys.Rollout:
		if del {
			return nil
		}
		return deriveRollout(ev, k.Unit, kv, prev)
	case keys.Reason:
		rel := k.Unit
		if del {
			return nil
		}
		var r, old fleet.Reason
		if json.Unmarshal(kv.Value, &r) != nil {
			return nil
		}
		if prev != nil && json.Unmarshal(prev.Value, &old) == nil && old.Summary == r.Summary {
			return nil
		}
		ev.Type, ev.Unit, ev.Message = fleet.EventUnitUnplaced, rel, r.Summary
		if ev.Message == "" {
			ev.Message = rel + " cannot be placed"
		}
		return []fleet.Event{ev}
	}
	return nil
}

func deriveUnit(ev fleet.Event, name string, del bool, kv, prev *etcdkv.KV) []fleet.Event {
	ev.Unit = name
	if del {
		ev.Type = fleet.EventUnitDestroyed
		ev.Message = name + " destroyed"
		return []fleet.Event{ev}
	}
	var u fleet.Unit
	if json.Unmarshal(kv.Value, &u) != nil {
		return nil
	}
	ev.State = string(u.DesiredState)
	var old fleet.Unit
	if prev == nil || json.Unmarshal(prev.Value, &old) != nil {
		ev.Type = fleet.EventUnitSubmitted
		ev.Message = fmt.Sprintf("%s submitted (desired %s)", name, u.DesiredState)
		return []fleet.Event{ev}
	}
	var out []fleet.Event
	if old.Hash != u.Hash {
		r := ev
		r.Type = fleet.EventUnitReplaced
		r.Message = fmt.Sprintf("%s replaced (hash %s)", name, short(u.Hash))
		out = append(out, r)
	}
	if old.DesiredState != u.DesiredState {
		d := ev
		d.Type = fleet.EventUnitDesired
		d.Message = fmt.Sprintf("%s desired state %s → %s", name, old.DesiredState, u.DesiredState)
		out = append(out, d)
	}
	return out
}

func deriveMachine(ev fleet.Event, id string, del bool, kv, prev *etcdkv.KV) []fleet.Event {
	ev.Machine = id
	if del {
		var m fleet.Machine
		if prev != nil {
			_ = json.Unmarshal(prev.Value, &m)
		}
		ev.Type, ev.IP = fleet.EventMachineLost, m.PublicIP
		ev.Message = "machine " + legend(id, m.PublicIP) + " lost"
		return []fleet.Event{ev}
	}
	if prev != nil {
		return nil // re-registration or update of a live machine
	}
	var m fleet.Machine
	_ = json.Unmarshal(kv.Value, &m)
	ev.Type, ev.IP = fleet.EventMachineJoined, m.PublicIP
	ev.Message = "machine " + legend(id, m.PublicIP) + " joined"
	return []fleet.Event{ev}
}

func deriveState(ev fleet.Event, unit, machine string, kv, prev *etcdkv.KV) []fleet.Event {
	var st, old fleet.UnitState
	if json.Unmarshal(kv.Value, &st) != nil {
		return nil
	}
	if prev != nil {
		_ = json.Unmarshal(prev.Value, &old)
	}
	if st.ActiveState == old.ActiveState {
		return nil
	}
	ev.Unit, ev.Machine = unit, machine
	ev.State = st.ActiveState
	if st.SubState != "" {
		ev.State += "/" + st.SubState
	}
	on := fleet.ShortMachineID(machine)
	switch st.ActiveState {
	case "active":
		ev.Type = fleet.EventUnitStarted
		ev.Message = fmt.Sprintf("%s started on %s", unit, on)
	case "failed":
		ev.Type = fleet.EventUnitFailed
		ev.Message = fmt.Sprintf("%s failed on %s", unit, on)
	case "inactive":
		if old.ActiveState == "" {
			return nil // loaded, never ran
		}
		ev.Type = fleet.EventUnitStopped
		ev.Message = fmt.Sprintf("%s stopped on %s", unit, on)
	default:
		return nil // activating, deactivating: transitions
	}
	return []fleet.Event{ev}
}

func legend(id, ip string) string {
	if ip == "" {
		return fleet.ShortMachineID(id)
	}
	return fleet.ShortMachineID(id) + "/" + ip
}

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// Coalesce merges, in place of the pair, an unscheduled event and a later
// scheduled event of the same unit on another machine whose revisions are
// equal or adjacent into one rescheduled event (at the scheduled event's
// position and revision). Other events keep their order.
func Coalesce(evs []fleet.Event) []fleet.Event {
	merged := slices.Clone(evs)
	drop := make([]bool, len(evs))
	for i, e := range merged {
		if e.Type != fleet.EventUnitScheduled {
			continue
		}
		for j := range i {
			u := merged[j]
			if drop[j] || u.Type != fleet.EventUnitUnscheduled || u.Unit != e.Unit || u.Machine == e.Machine {
				continue
			}
			if d := e.Rev - u.Rev; d < 0 || d > 1 {
				continue
			}
			drop[j] = true
			e.Type = fleet.EventUnitRescheduled
			e.From = u.Machine
			e.Message = fmt.Sprintf("%s rescheduled from %s to %s", e.Unit, fleet.ShortMachineID(u.Machine), fleet.ShortMachineID(e.Machine))
			merged[i] = e
			break
		}
	}
	out := merged[:0]
	for i, e := range merged {
		if !drop[i] {
			out = append(out, e)
		}
	}
	return out
}

// deriveRollout turns a change of a rollout record into rollout events: its
// creation, a batch that became healthy, and the phases that end or turn
// it.
func deriveRollout(ev fleet.Event, unit string, kv, prev *etcdkv.KV) []fleet.Event {
	var r, old rollout.Rollout
	if json.Unmarshal(kv.Value, &r) != nil {
		return nil
	}
	ev.Unit, ev.State = unit, string(r.Phase)
	to := fmt.Sprintf("revision %d (%s)", r.ToRevision, short(r.ToHash))
	if prev == nil || json.Unmarshal(prev.Value, &old) != nil || old.Created != r.Created {
		ev.Type = fleet.EventRolloutStarted
		verb := "rollout"
		if r.Undo {
			verb = "undo"
		}
		ev.Message = fmt.Sprintf("%s of %s to %s started: %d targets, %d at a time", verb, unit, to, len(r.Targets), r.MaxParallel)
		return []fleet.Event{ev}
	}
	var out []fleet.Event
	if r.Batches > old.Batches {
		b := ev
		b.Type = fleet.EventRolloutBatch
		_, _, updated, _, _ := r.Counts()
		b.Message = fmt.Sprintf("rollout of %s: batch %d healthy (%d/%d updated)", unit, r.Batches, updated, len(r.Targets))
		out = append(out, b)
	}
	if r.Phase == old.Phase {
		return out
	}
	p := ev
	switch r.Phase {
	case rollout.PhaseFailed, rollout.PhaseReverting:
		if old.Phase == rollout.PhaseReverting || old.Phase == rollout.PhaseFailed {
			p.Type, p.Message = fleet.EventRolloutFailed, fmt.Sprintf("rollout of %s: %s", unit, r.Reason)
			break
		}
		p.Type, p.Message = fleet.EventRolloutFailed, fmt.Sprintf("rollout of %s to %s failed: %s", unit, to, r.Reason)
		if r.Phase == rollout.PhaseReverting {
			p.Message += "; reverting"
		}
	case rollout.PhaseReverted:
		p.Type = fleet.EventRolloutReverted
		p.Message = fmt.Sprintf("rollout of %s reverted to revision %d (%s)", unit, r.FromRevision, short(r.FromHash))
	case rollout.PhaseDone:
		p.Type = fleet.EventRolloutDone
		p.Message = fmt.Sprintf("rollout of %s to %s done: %d/%d updated", unit, to, len(r.Targets), len(r.Targets))
	case rollout.PhaseAborted:
		p.Type = fleet.EventRolloutAborted
		p.Message = fmt.Sprintf("rollout of %s aborted: %s", unit, r.Reason)
	default:
		return out // running <-> paused
	}
	return append(out, p)
}

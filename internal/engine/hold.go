package engine

import (
	"maps"
	"slices"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
)

// Holding machines through a control-plane outage.
//
// A machine is present while its etcd lease lives. When etcd itself has an
// outage (its only member frozen, say), most or all leases lapse together
// and every machine seems to vanish; moving their units would restart the
// whole cluster's workload because the control plane hiccuped. So, as with
// Kubernetes' unhealthy-zone rule, the engine does not move units away from
// machines that were lost together with many others:
//
//   - Lost. A machine is lost when it was present (live or held) at the
//     previous round and is not live now, or, on the first round after
//     leadership is acquired, when the current schedule names it and it is
//     not live. It stays in the lost set for ttl (agent_ttl) from the round
//     that noticed it, or until it is live again.
//   - Mass loss. With n lost machines (those noticed within the last ttl,
//     so losses "within agent_ttl of each other" count together) out of M
//     (live, lost or held), the loss is a mass loss when n == M (every
//     machine: this covers clusters of 1 and 2 machines, where half is a
//     single machine), or n >= 2 and 2n >= M (at least two, and at least
//     half). A single machine dying while the rest are fine (1 of M >= 2)
//     is never a mass loss.
//   - Held. On a mass loss every lost machine is held until its deadline:
//     when it was noticed plus ttl. A held machine keeps the units the
//     schedule has on it (their entries are neither deleted nor moved) and
//     gets nothing new. It is released when it is live again (same ID, new
//     lease: its entries were never deleted, so its agent just carries on)
//     or at its deadline, when its units move as for any gone machine.
//   - Settle. etcd revokes expired leases one by one, so a mass loss can
//     reach the engine over a few rounds a few milliseconds apart. A lost
//     machine that is not held is therefore kept in place ("pending") for
//     holdSettle(ttl) (ttl/20, at most 200 ms) after it was noticed, so that
//     the first round of a mass loss does not move its first machine's
//     units; after that, if no mass loss was seen, its units move. This is
//     the only delay a lone machine's failover gets.
//
// holds is pure: time is an input.

// maxHoldSettle bounds holdSettle.
const maxHoldSettle = 200 * time.Millisecond

// holdSettle is how long a lost machine that is not (yet) held keeps its
// units while the engine waits to see whether others follow it.
func holdSettle(ttl time.Duration) time.Duration { return min(ttl/20, maxHoldSettle) }

// holdState is what the engine remembers between rounds about lost
// machines. The zero value is the state of a fresh leader.
type holdState struct {
	started bool                 // a round has run since leadership was acquired
	seen    map[string]bool      // live or held machines after the previous round
	lost    map[string]time.Time // machines noticed lost within the last ttl -> when noticed
	held    map[string]time.Time // held machines -> end of their grace
}

// holdEvents is what changed in one round, for the logs.
type holdEvents struct {
	Started  []string // machines whose hold began this round (sorted)
	Lost     int      // lost machines counted for the decision (when Started is not empty)
	Total    int      // machines counted for the decision
	Returned []string // held machines that are live again (sorted)
	Expired  []string // held machines whose grace ended (sorted)
}

// keep returns the machines whose units stay where they are at now: the
// held ones and the lost ones still settling.
func (s holdState) keep(now time.Time, ttl time.Duration) map[string]bool {
	out := make(map[string]bool, len(s.held))
	for id, deadline := range s.held {
		if now.Before(deadline) {
			out[id] = true
		}
	}
	settle := holdSettle(ttl)
	for id, at := range s.lost {
		if now.Before(at.Add(settle)) {
			out[id] = true
		}
	}
	return out
}

// next returns when, after now, the machines kept change on their own (a
// settle or a grace period ending), or the zero time.
func (s holdState) next(now time.Time, ttl time.Duration) time.Time {
	var t time.Time
	earlier := func(c time.Time) {
		if t.IsZero() || c.Before(t) {
			t = c
		}
	}
	for _, d := range s.held {
		if d.After(now) {
			earlier(d)
		}
	}
	settle := holdSettle(ttl)
	for id, at := range s.lost {
		if _, held := s.held[id]; !held && at.Add(settle).After(now) {
			earlier(at.Add(settle))
		}
	}
	return t
}

// massLoss reports whether n lost machines out of total is a mass loss.
func massLoss(n, total int) bool {
	return n > 0 && (n == total || (n >= 2 && 2*n >= total))
}

// holds advances the hold state to now, given the live machines and the
// machines the current schedule names. It is pure and deterministic.
func holds(prev holdState, now time.Time, live, scheduled []string, ttl time.Duration) (holdState, holdEvents) {
	var ev holdEvents
	liveSet := make(map[string]bool, len(live))
	for _, id := range live {
		liveSet[id] = true
	}
	next := holdState{
		started: true,
		seen:    make(map[string]bool, len(live)),
		lost:    make(map[string]time.Time),
		held:    make(map[string]time.Time),
	}
	for id, at := range prev.lost {
		if !liveSet[id] && now.Before(at.Add(ttl)) {
			next.lost[id] = at
		}
	}
	for id, deadline := range prev.held {
		switch {
		case liveSet[id]:
			ev.Returned = append(ev.Returned, id)
		case !now.Before(deadline):
			ev.Expired = append(ev.Expired, id)
		default:
			next.held[id] = deadline
		}
	}
	// Newly lost machines.
	var candidates []string
	if prev.started {
		for id := range prev.seen {
			if _, held := prev.held[id]; !held {
				candidates = append(candidates, id)
			}
		}
	} else {
		candidates = scheduled
	}
	for _, id := range candidates {
		if id == "" || liveSet[id] {
			continue
		}
		if _, ok := next.lost[id]; !ok {
			next.lost[id] = now
		}
	}
	// Decide.
	counted := make(map[string]bool, len(next.lost)+len(next.held))
	for id := range next.lost {
		counted[id] = true
	}
	for id := range next.held {
		counted[id] = true
	}
	total := len(counted)
	for id := range liveSet {
		if !counted[id] && id != "" {
			total++
		}
	}
	if massLoss(len(counted), total) {
		for id, at := range next.lost {
			if _, ok := next.held[id]; ok {
				continue
			}
			next.held[id] = at.Add(ttl)
			ev.Started = append(ev.Started, id)
		}
		if len(ev.Started) > 0 {
			ev.Lost, ev.Total = len(counted), total
		}
	}
	for id := range liveSet {
		if id != "" {
			next.seen[id] = true
		}
	}
	for id := range next.held {
		next.seen[id] = true
	}
	slices.Sort(ev.Started)
	slices.Sort(ev.Returned)
	slices.Sort(ev.Expired)
	return next, ev
}

// reasonHeld is the per-machine reason for a held machine.
const reasonHeld = "machine lost its lease with many others; its units are held in place for agent_ttl"

// holdUnits takes the units that stay on kept machines out of the
// scheduler's input and returns where they stay. A non-global unit is held
// when the schedule has it on a kept machine and on no live one (if it is
// also on a live machine the scheduler keeps it there as usual); it leaves
// the input, so nothing can count it anywhere else. A global unit stays in
// the input (it is placed on the live machines as usual) and also keeps
// its kept machines. Inactive units are not held: their entries go.
func holdUnits(in *schedule.Snapshot, keep map[string]bool) map[string][]string {
	if len(keep) == 0 {
		return nil
	}
	live := make(map[string]bool, len(in.Machines))
	for _, m := range in.Machines {
		live[m.ID] = true
	}
	out := make(map[string][]string)
	units := in.Units[:0:0]
	for _, u := range in.Units {
		cur := in.Current[u.Name]
		var on []string
		onLive := false
		for _, id := range cur {
			if keep[id] && !slices.Contains(on, id) {
				on = append(on, id)
			}
			onLive = onLive || live[id]
		}
		if len(on) == 0 || u.Desired == fleet.JobStateInactive {
			units = append(units, u)
			continue
		}
		slices.Sort(on)
		switch {
		case u.Req.Global:
			out[u.Name] = on
			units = append(units, u)
		case onLive:
			units = append(units, u)
		default:
			out[u.Name] = on[:1]
		}
	}
	if len(out) == 0 {
		return nil
	}
	in.Units = units
	return out
}

// applyHeld adds the held placements to the scheduler's result and names
// the kept machines in the reasons of units left without a machine.
func applyHeld(res *schedule.Result, held map[string][]string, keep map[string]bool) {
	if res.Assign == nil && len(held) > 0 {
		res.Assign = make(map[string][]string, len(held))
	}
	for name, on := range held {
		ms := append(slices.Clone(res.Assign[name]), on...)
		slices.Sort(ms)
		res.Assign[name] = slices.Compact(ms)
		delete(res.Reasons, name)
	}
	if len(keep) > 0 {
		explainMachines(*res, slices.Sorted(maps.Keys(keep)), reasonHeld)
	}
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

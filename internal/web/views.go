package web

import (
	"context"
	"fmt"
	"github.com/fleetd/fleet/internal/store"
	"slices"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Overview is the data of the main page.
type Overview struct {
	Machines []MachineView
	Units    []UnitView
	Leader   string // engine leader's machine ID ("" if none)
	Counts   map[string]int
	// Rollouts are the rollouts not over and those that ended within
	// RecentRollout; RolloutsErr says why they could not be read.
	Rollouts    []RolloutView
	RolloutsErr string
}

// MachineView is one row of the machine table.
type MachineView struct {
	ID, IP, Metadata, Version string
	// Capacity is what the machine offers and what its units reserve,
	// e.g. "cpu 0.5 of 2 · memory 800M of 1G" ("-" when it advertises
	// nothing).
	Capacity               string
	Units                  []string
	Leader, NoEngine, Self bool
}

// Placement is where a unit is scheduled and what that machine reports.
type Placement struct {
	Machine, IP    string
	Active, Sub    string
	JobState       string
	HasState, Live bool
}

// UnitView is one unit: the unit table row, and the unit page.
type UnitView struct {
	Name, Description, Hash string
	Desired, Current        string
	Active                  string // active state of the first placement ("-" when none)
	Placements              []Placement
	Reason                  *fleet.Reason
	Global, Template, Gone  bool
	File                    string
	// Owner is the template whose rollouts move this instance ("" for a
	// template or a plain unit).
	Owner string
	// Rollout is the latest rollout of the unit (of Owner for an
	// instance), nil if it never had one; Target is this instance among
	// its targets. RolloutErr says why it could not be read.
	Rollout    *RolloutView
	Target     *TargetView
	RolloutErr string
}

// loadOverview reads everything the main page shows.
func (h *Handler) loadOverview(ctx context.Context) (*Overview, error) {
	st := h.cfg.Store
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	states, err := st.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	leader, _ := st.Leader(ctx)
	ov := &Overview{Leader: leader, Counts: map[string]int{}}
	byMachine := map[string][]string{}
	for _, e := range snap.Schedule {
		byMachine[e.Machine] = append(byMachine[e.Machine], e.Unit)
	}
	reserved := reservations(snap.Units, snap.Schedule)
	for _, m := range snap.Machines {
		ov.Machines = append(ov.Machines, MachineView{
			ID: m.ID, IP: m.PublicIP, Metadata: m.MetadataString(), Version: m.Version,
			Capacity: capacityText(m.Capacity, reserved[m.ID]),
			Units:    byMachine[m.ID], Leader: m.ID == leader, NoEngine: m.DisableEngine,
			Self: m.ID == h.cfg.MachineID,
		})
	}
	idx := indexStates(states)
	live := machinesByID(snap.Machines)
	placements := map[string][]string{}
	for _, e := range snap.Schedule {
		placements[e.Unit] = append(placements[e.Unit], e.Machine)
	}
	for _, u := range snap.Units {
		reason, ok := snap.Reasons[u.Name]
		var rp *fleet.Reason
		if ok {
			rp = &reason
		}
		v := unitView(u, placements[u.Name], idx, live, rp)
		ov.Counts[v.Active]++
		ov.Units = append(ov.Units, v)
	}
	// A record that cannot be read (etcd answered the rest) costs the
	// section, not the page.
	if recs, err := st.Rollouts(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		h.log.Warn("web: rollouts", "err", err)
		ov.RolloutsErr = err.Error()
	} else {
		ov.Rollouts = overviewRollouts(recs, h.now())
	}
	return ov, nil
}

// loadUnit reads one unit with its file; store.ErrNotFound if absent.
func (h *Handler) loadUnit(ctx context.Context, name string) (*UnitView, error) {
	st := h.cfg.Store
	u, err := st.Unit(ctx, name)
	if err != nil {
		return nil, err
	}
	pl, err := st.Placements(ctx, name)
	if err != nil {
		return nil, err
	}
	states, err := st.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	machines, err := st.Machines(ctx)
	if err != nil {
		return nil, err
	}
	live := machinesByID(machines)
	var rp *fleet.Reason
	if r, ok, err := st.Reason(ctx, name); err != nil {
		return nil, err
	} else if ok {
		rp = &r
	}
	v := unitView(u, pl, indexStates(states), live, rp)
	v.File = string(unitfile.Serialize(u.Options))
	v.Owner = rolloutOwner(name)
	h.loadUnitRollout(ctx, &v)
	return &v, nil
}

// machinesByID indexes the live machines by ID.
func machinesByID(ms []fleet.Machine) map[string]fleet.Machine {
	live := make(map[string]fleet.Machine, len(ms))
	for _, m := range ms {
		live[m.ID] = m
	}
	return live
}

type stateKey struct{ unit, machine string }

func indexStates(states []fleet.UnitState) map[stateKey]fleet.UnitState {
	idx := make(map[stateKey]fleet.UnitState, len(states))
	for _, s := range states {
		idx[stateKey{s.Name, s.MachineID}] = s
	}
	return idx
}

// unitView follows the API's rule for the current state: inactive unless
// placed on a machine that published a state; then that state's job state
// ("loaded" if the agent gave none).
func unitView(u fleet.Unit, placed []string, idx map[stateKey]fleet.UnitState, live map[string]fleet.Machine, reason *fleet.Reason) UnitView {
	v := UnitView{
		Name: u.Name, Hash: u.Hash, Desired: string(u.DesiredState),
		Current: string(fleet.JobStateInactive), Active: "-",
		Description: unitfile.Description(u.Options),
		Template:    fleet.IsTemplate(u.Name), Reason: reason,
	}
	if req, _, err := unitfile.Requirements(u.Name, u.Options); err == nil {
		v.Global = req.Global
	}
	placed = slices.Clone(placed)
	slices.Sort(placed)
	for i, m := range placed {
		p := Placement{Machine: m, Active: "-"}
		if lm, ok := live[m]; ok {
			p.IP, p.Live = lm.PublicIP, true
		}
		if s, ok := idx[stateKey{u.Name, m}]; ok {
			p.HasState, p.Active, p.Sub, p.JobState = true, s.ActiveState, s.SubState, string(s.JobState)
			if p.JobState == "" {
				p.JobState = string(fleet.JobStateLoaded)
			}
			if i == 0 && !v.Global {
				v.Current = p.JobState
			}
		}
		if i == 0 {
			v.Active = p.Active
		}
		v.Placements = append(v.Placements, p)
	}
	if v.Active == "" {
		v.Active = "-"
	}
	v.Description = strings.TrimSpace(v.Description)
	return v
}

// reservations sums, per machine, the [X-Fleet] Memory=/CPU= reservations
// of the units scheduled there.
func reservations(units []fleet.Unit, sched []store.ScheduleEntry) map[string]fleet.Resources {
	byName := make(map[string]fleet.Unit, len(units))
	for _, u := range units {
		byName[u.Name] = u
	}
	out := map[string]fleet.Resources{}
	for _, e := range sched {
		u, ok := byName[e.Unit]
		if !ok {
			continue
		}
		req, _, err := unitfile.Requirements(u.Name, u.Options)
		if err != nil {
			continue
		}
		r := out[e.Machine]
		r.CPUMilli += req.Resources.CPUMilli
		r.MemoryBytes += req.Resources.MemoryBytes
		out[e.Machine] = r
	}
	return out
}

// capacityText renders what a machine offers and what is reserved on it.
func capacityText(capacity, used fleet.Resources) string {
	var parts []string
	if capacity.CPUMilli > 0 {
		parts = append(parts, fmt.Sprintf("cpu %s of %s", fleet.FormatCPU(used.CPUMilli), fleet.FormatCPU(capacity.CPUMilli)))
	}
	if capacity.MemoryBytes > 0 {
		parts = append(parts, fmt.Sprintf("memory %s of %s", fleet.FormatSize(used.MemoryBytes), fleet.FormatSize(capacity.MemoryBytes)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " · ")
}

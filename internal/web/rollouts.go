package web

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
)

// RecentRollout is how long the overview keeps showing a rollout after it
// ended (done, failed, reverted, aborted), counted from its last change.
const RecentRollout = 10 * time.Minute

// RolloutView is one rollout record as the dashboard shows it: in the
// overview's Rollouts section and on the page of its unit (or template,
// or one of the template's instances).
type RolloutView struct {
	Unit                     string
	Global, Undo             bool
	FromHash, ToHash         string
	FromRevision, ToRevision int
	Phase                    string
	// Class colours the phase badge and the bar: run, mid, ok, bad, off.
	Class string
	// Active: the phase is not terminal (the page polls while one is shown).
	Active bool
	// UpdatedTargets of Total targets are healthy on the new revision (the
	// bar).
	UpdatedTargets, Total int
	// Progress is rollout.Progress: one line for people.
	Progress string
	// FailReason is why it failed (phases failed, reverting, reverted).
	FailReason string
	User       string
	Created    time.Time
	Changed    time.Time // the record's last change (Updated)
	Targets    []TargetView
}

// BarMax is the bar's max attribute (a <progress> needs max > 0).
func (v RolloutView) BarMax() int { return max(v.Total, 1) }

// TargetView is one target of a rollout.
type TargetView struct {
	Name, Status, Class, Message string
	// Machine: the target is a machine of a global unit, not a unit.
	Machine bool
}

var phaseClass = map[rollout.Phase]string{
	rollout.PhaseRunning: "run", rollout.PhasePaused: "mid", rollout.PhaseReverting: "bad",
	rollout.PhaseDone: "ok", rollout.PhaseFailed: "bad", rollout.PhaseReverted: "mid", rollout.PhaseAborted: "off",
}

var targetClass = map[rollout.TargetStatus]string{
	rollout.TargetPending: "off", rollout.TargetUpdating: "run", rollout.TargetUpdated: "ok",
	rollout.TargetFailed: "bad", rollout.TargetReverting: "mid", rollout.TargetReverted: "mid",
}

func rolloutView(r rollout.Rollout) RolloutView {
	_, _, updated, _, _ := r.Counts()
	v := RolloutView{
		Unit: r.Unit, Global: r.Global, Undo: r.Undo,
		FromHash: r.FromHash, ToHash: r.ToHash, FromRevision: r.FromRevision, ToRevision: r.ToRevision,
		Phase: string(r.Phase), Class: cmp.Or(phaseClass[r.Phase], "off"), Active: !r.Phase.Terminal(),
		UpdatedTargets: updated, Total: len(r.Targets), Progress: rollout.Progress(r),
		User: r.User, Created: r.Created, Changed: r.Updated,
	}
	switch r.Phase {
	case rollout.PhaseFailed, rollout.PhaseReverting, rollout.PhaseReverted:
		v.FailReason = r.Reason
	}
	for _, t := range r.Targets {
		v.Targets = append(v.Targets, TargetView{
			Name: t.Name, Status: string(t.Status), Class: cmp.Or(targetClass[t.Status], "off"),
			Message: t.Message, Machine: r.Global,
		})
	}
	return v
}

// overviewRollouts picks the records the overview shows: every one that is
// not over, then those that ended within RecentRollout of now; by unit
// within each group.
func overviewRollouts(recs []store.RolloutRecord, now time.Time) []RolloutView {
	var out []RolloutView
	for _, rec := range recs {
		r := rec.Rollout
		if r.Phase.Terminal() && now.Sub(r.Updated) > RecentRollout {
			continue
		}
		out = append(out, rolloutView(r))
	}
	slices.SortStableFunc(out, func(a, b RolloutView) int {
		switch {
		case a.Active == b.Active:
			return cmp.Compare(a.Unit, b.Unit)
		case a.Active:
			return -1
		}
		return 1
	})
	return out
}

// loadUnitRollout fills v.Rollout (and v.Target) with the latest rollout
// of v's revision owner: the unit itself, or for an instance its
// template. A unit that never had one is left alone.
func (h *Handler) loadUnitRollout(ctx context.Context, v *UnitView) {
	rec, err := h.cfg.Store.Rollout(ctx, store.RevisionOwner(v.Name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		if ctx.Err() == nil {
			h.log.Warn("web: rollout", "unit", v.Name, "err", err)
		}
		v.RolloutErr = err.Error()
		return
	}
	rv := rolloutView(rec.Rollout)
	v.Rollout = &rv
	if rv.Unit == v.Name || rv.Global {
		return
	}
	for i := range rv.Targets {
		if rv.Targets[i].Name == v.Name {
			v.Target = &rv.Targets[i]
		}
	}
}

// rolloutOwner is the name whose rollout record name's page shows, if it
// is not name itself (an instance's template); "" otherwise.
func rolloutOwner(name string) string {
	if o := store.RevisionOwner(name); o != name && fleet.IsTemplate(o) {
		return o
	}
	return ""
}

// Package rolloutd drives rolling updates on the engine leader: the loop
// around the pure rollout.Step.
//
// Contract:
//  1. Run works only while the given leadership holds; every write is one
//     store.ApplyRollout transaction, fenced by that leadership and
//     compared on the record's revision, that writes the next record and
//     the unit files of the step's actions together. A deposed leader
//     writes nothing (ErrNotLeader ends Run); a record changed meanwhile
//     (the API paused or aborted it) is read again at the next round.
//  2. A round reads every rollout record; for each that is not terminal it
//     observes the targets (their unit states, their [X-Service]
//     endpoints under the registry's prefix), calls rollout.Step at the
//     clock's now, and writes the result if anything changed. Rounds run
//     on a tick (Interval), when a rollout record changes, when a target's
//     min-healthy-time or deadline comes due, and, while a rollout is not
//     over, when a unit state changes (that watch is dropped when none
//     runs). The loop is level-triggered: whatever a round misses, the
//     next one sees.
//  3. The driver keeps no state of its own between rounds, so a new leader
//     carries on a rollout where the old one stopped.
//  4. A SetHash action of a template or plain rollout rewrites the target
//     unit's record with that revision's file (store.RevisionByHash of
//     store.RevisionOwner(target)), keeping its desired state; the engine
//     and the agent then replace the unit as for any changed file, and the
//     agent deregisters its endpoints before stopping it. A global
//     rollout's SetHash writes nothing: the record pins the machine
//     (rollout.Pin, applied by the engine). SetFile rewrites Spec.Unit's
//     record.
package rolloutd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// DefaultInterval is how often the driver looks at running rollouts when
// nothing wakes it.
const DefaultInterval = 250 * time.Millisecond

// Config configures a Driver.
type Config struct {
	Store *store.Store
	// ServicesPrefix is the registry's key prefix, ending in "/"
	// (registry.DefaultPrefix).
	ServicesPrefix string
	Interval       time.Duration
	Logger         *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Surge returns, for each unit, a machine where a second copy of it
	// could run (engine.SurgeMachines); nil: rollouts never surge.
	Surge func(ctx context.Context, units []string) (map[string]string, error)
}

// Driver moves rollouts forward.
type Driver struct {
	cfg Config
	log *slog.Logger
}

// New returns a driver; call Run while leading.
func New(cfg Config) *Driver {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ServicesPrefix == "" {
		cfg.ServicesPrefix = "/services/"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log.With("component", "rollout")}
}

// Run drives rollouts until ctx ends or the leadership is lost.
func (d *Driver) Run(ctx context.Context, lead *store.Leadership) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wake := d.cfg.Store.Notify(ctx, "rollouts/")
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	// While a rollout runs, unit state changes wake the driver too, so a
	// target's health is seen when it is reported, not at the next tick.
	var states <-chan struct{}
	stopStates := func() {}
	defer func() { stopStates() }()
	for {
		next, active, err := d.round(ctx, lead)
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.log.Warn("rollout round failed", "err", err)
		}
		switch {
		case active && states == nil:
			sctx, scancel := context.WithCancel(ctx)
			states, stopStates = d.cfg.Store.Notify(sctx, "states/"), scancel
		case !active && states != nil:
			stopStates()
			states, stopStates = nil, func() {}
		}
		// Wake when a target's min-healthy-time or deadline comes due.
		due.Stop()
		if !next.IsZero() {
			due.Reset(max(next.Sub(d.cfg.Now()), 0) + time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lead.Done():
			return errors.New("leader session ended")
		case <-wake:
		case <-states:
		case <-due.C:
		case <-tick.C:
		}
	}
}

// Round steps every rollout that is not over once.
func (d *Driver) Round(ctx context.Context, lead *store.Leadership) error {
	_, _, err := d.round(ctx, lead)
	return err
}

// round steps every rollout that is not over once; it returns when the
// next target comes due (its min-healthy-time or its deadline; zero if
// none) and whether any rollout is still going on.
func (d *Driver) round(ctx context.Context, lead *store.Leadership) (time.Time, bool, error) {
	recs, err := d.cfg.Store.Rollouts(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	var active []store.RolloutRecord
	for _, rec := range recs {
		if !rec.Rollout.Phase.Terminal() {
			active = append(active, rec)
		}
	}
	if len(active) == 0 {
		return time.Time{}, false, nil
	}
	states, err := d.cfg.Store.UnitStates(ctx)
	if err != nil {
		return time.Time{}, true, err
	}
	var errs []error
	var next time.Time
	for _, rec := range active {
		r, err := d.step(ctx, lead, rec, states)
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				return time.Time{}, true, err
			}
			errs = append(errs, err)
		}
		if at := dueAt(r); !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, true, errors.Join(errs...)
}

// dueAt is the earliest time a target of r in flight reaches its
// min-healthy-time (if healthy now) or its deadline.
func dueAt(r rollout.Rollout) time.Time {
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if r.Phase.Terminal() {
		return at
	}
	for _, t := range r.Targets {
		if t.Status != rollout.TargetUpdating && t.Status != rollout.TargetReverting {
			continue
		}
		if !t.HealthySince.IsZero() {
			earliest(t.HealthySince.Add(r.MinHealthyTime))
		}
		if !t.Started.IsZero() {
			earliest(t.Started.Add(r.HealthyDeadline))
		}
	}
	return at
}

// step moves one rollout and returns the record as it now stands.
func (d *Driver) step(ctx context.Context, lead *store.Leadership, rec store.RolloutRecord, states []fleet.UnitState) (rollout.Rollout, error) {
	r := rec.Rollout
	obs, err := d.observe(ctx, r, states)
	if err != nil {
		return r, fmt.Errorf("rollout of %s: observe: %w", r.Unit, err)
	}
	now := d.cfg.Now()
	next, acts, evs := rollout.Step(r, obs, now)
	// A batch started in this step (the first, or the one after a batch
	// this step promoted) may surge: ask where, and step again with it.
	if started := startedBatch(r, next); len(started) > 0 && d.cfg.Surge != nil && !r.Global && r.MaxSurge > 0 {
		to, err := d.cfg.Surge(ctx, started)
		if err != nil {
			return r, fmt.Errorf("rollout of %s: surge machines: %w", r.Unit, err)
		}
		if len(to) > 0 {
			for _, name := range started {
				if o := obs[name]; o.Present && to[name] != "" {
					o.SurgeTo = to[name]
					obs[name] = o
				}
			}
			next, acts, evs = rollout.Step(r, obs, now)
		}
	}
	if len(acts) == 0 && reflect.DeepEqual(next, r) {
		return r, nil
	}
	var writes []store.UnitWrite
	for _, a := range acts {
		w, err := d.actionWrite(ctx, r, a)
		if err != nil {
			return r, fmt.Errorf("rollout of %s: %w", r.Unit, err)
		}
		if w.Unit.Name == "" {
			continue
		}
		// SetFile and SetHash of a plain unit name the same record: one put.
		if i := slices.IndexFunc(writes, func(x store.UnitWrite) bool { return x.Unit.Name == w.Unit.Name }); i >= 0 {
			writes[i] = w
		} else {
			writes = append(writes, w)
		}
	}
	if _, err := d.cfg.Store.ApplyRollout(ctx, lead, store.RolloutRecord{Rollout: next, ModRev: rec.ModRev}, writes); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return r, nil // changed by the API meanwhile; the next round reads it
		}
		return r, err
	}
	for _, ev := range evs {
		d.log.Info(ev.Message, "event", ev.Type, "unit", r.Unit)
	}
	return next, nil
}

// actionWrite returns the unit record an action writes (Name "" for none),
// with the mod revision it was read at.
func (d *Driver) actionWrite(ctx context.Context, r rollout.Rollout, a rollout.Action) (store.UnitWrite, error) {
	var name string
	switch {
	case a.Kind == rollout.SetFile:
		name = r.Unit
	case a.Kind == rollout.SetHash && !r.Global:
		name = a.Target
	default:
		return store.UnitWrite{}, nil
	}
	u, modRev, err := d.cfg.Store.UnitRev(ctx, name)
	if errors.Is(err, store.ErrNotFound) && a.Kind == rollout.SetHash {
		// Destroyed meanwhile: nothing to rewrite. The target never
		// becomes healthy, so the rollout fails at its deadline instead
		// of retrying this write for ever.
		return store.UnitWrite{}, nil
	}
	if err != nil {
		return store.UnitWrite{}, fmt.Errorf("%s %s: %w", a.Kind, name, err)
	}
	rev, ok, err := d.cfg.Store.RevisionByHash(ctx, store.RevisionOwner(name), a.Hash)
	if err != nil {
		return store.UnitWrite{}, fmt.Errorf("%s %s: %w", a.Kind, name, err)
	}
	if !ok {
		return store.UnitWrite{}, fmt.Errorf("%s %s: revision %s of %s is not kept", a.Kind, name, a.Hash, store.RevisionOwner(name))
	}
	u.Options, u.Hash = rev.Options, rev.Hash
	return store.UnitWrite{Unit: u, ModRev: modRev}, nil
}

// startedBatch names the targets pending in r and updating in next.
func startedBatch(r, next rollout.Rollout) []string {
	var names []string
	for i, t := range next.Targets {
		if t.Status == rollout.TargetUpdating && r.Targets[i].Status == rollout.TargetPending {
			names = append(names, t.Name)
		}
	}
	return names
}

// observe returns what the cluster shows of r's targets.
func (d *Driver) observe(ctx context.Context, r rollout.Rollout, states []fleet.UnitState) (map[string]rollout.Observation, error) {
	names := []string{r.Unit}
	if !r.Global {
		names = names[:0]
		for _, t := range r.Targets {
			names = append(names, t.Name)
		}
	}
	records, err := d.cfg.Store.UnitsByName(ctx, names)
	if err != nil {
		return nil, err
	}
	byUnit := map[string][]fleet.UnitState{}
	for _, st := range states {
		byUnit[st.Name] = append(byUnit[st.Name], st)
	}
	obs := make(map[string]rollout.Observation, len(r.Targets))
	for _, t := range r.Targets {
		unit, machine := t.Name, rollout.WatchMachine(t)
		if r.Global {
			unit, machine = r.Unit, t.Name
		}
		st, ok := pickState(byUnit[unit], machine, records[unit].Hash)
		if !ok {
			obs[t.Name] = rollout.Observation{}
			continue
		}
		o := rollout.Observation{Present: true, Hash: st.Hash, ActiveState: st.ActiveState, SubState: st.SubState, ChecksPassing: true}
		if t.Status == rollout.TargetPending {
			o.Machine = st.MachineID // where it runs, should it surge
		}
		if st.ActiveState == "active" {
			missing, err := d.missingEndpoints(ctx, unit, st)
			if err != nil {
				return nil, err
			}
			if len(missing) > 0 {
				o.ChecksPassing = false
				o.Detail = "health check not passing yet: endpoint " + missing[0] + " not registered"
				msg, ok, err := d.cfg.Store.Check(ctx, st.MachineID, unit)
				if err != nil {
					return nil, err
				}
				if ok {
					o.Detail = "health check failing: " + msg
				}
			}
		}
		obs[t.Name] = o
	}
	return obs, nil
}

// pickState chooses the state of a unit to judge: the one on machine if
// given; else the one reporting hash (the unit's file), else the first.
func pickState(sts []fleet.UnitState, machine, hash string) (fleet.UnitState, bool) {
	if machine != "" {
		i := slices.IndexFunc(sts, func(s fleet.UnitState) bool { return s.MachineID == machine })
		if i < 0 {
			return fleet.UnitState{}, false
		}
		return sts[i], true
	}
	if i := slices.IndexFunc(sts, func(s fleet.UnitState) bool { return s.Hash == hash }); i >= 0 {
		return sts[i], true
	}
	if len(sts) > 0 {
		return sts[0], true
	}
	return fleet.UnitState{}, false
}

// missingEndpoints returns the [X-Service] endpoints of the unit running
// as st that are not registered (their checks do not pass yet), as
// "name:port".
func (d *Driver) missingEndpoints(ctx context.Context, unit string, st fleet.UnitState) ([]string, error) {
	rev, ok, err := d.cfg.Store.RevisionByHash(ctx, store.RevisionOwner(unit), st.Hash)
	if err != nil || !ok {
		return nil, err // a file we do not keep: judged by its state alone
	}
	svcs, err := unitfile.Services(unit, rev.Options)
	if err != nil {
		return nil, nil
	}
	var missing []string
	for _, s := range svcs {
		key := d.cfg.ServicesPrefix + s.Name + "/" + st.MachineID + ":" + unit + ":" + strconv.Itoa(s.Port)
		_, found, _, err := d.cfg.Store.KV().Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if !found {
			missing = append(missing, s.Name+":"+strconv.Itoa(s.Port))
		}
	}
	return missing, nil
}

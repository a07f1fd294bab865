package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
)

// Config configures an agent.
type Config struct {
	Store     *store.Store
	Runner    runner.Runner
	MachineID string
	// Lease returns the machine's current presence lease (0 while there is
	// none); states are published on it.
	Lease func() clientv3.LeaseID
	// Interval is the periodic resync interval.
	Interval time.Duration
	Logger   *slog.Logger
}

// Agent runs this machine's share of the schedule.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	loaded    map[string]loadedUnit      // what the runner holds, by unit name
	published map[string]fleet.UnitState // what is in etcd
	pubLease  clientv3.LeaseID
}

type loadedUnit struct {
	hash     string
	jobState fleet.JobState // loaded or launched
}

// New returns an agent; call Run.
func New(cfg Config) *Agent {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{
		cfg:       cfg,
		log:       log.With("component", "agent"),
		loaded:    make(map[string]loadedUnit),
		published: make(map[string]fleet.UnitState),
	}
}

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	sched := a.cfg.Store.Notify(ctx, "schedule/"+a.cfg.MachineID+"/")
	changed := a.cfg.Runner.Changed()
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	for {
		if err := a.Reconcile(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("reconcile failed", "err", err)
		}
		if err := a.Publish(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("publishing unit states failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sched:
		case <-changed:
			// Only states changed: publish without re-reading the schedule.
			if err := a.Publish(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("publishing unit states failed", "err", err)
			}
			continue
		case <-tick.C:
		}
	}
}

// Reconcile makes the runner match this machine's schedule.
func (a *Agent) Reconcile(ctx context.Context) error {
	entries, _, err := a.cfg.Store.MachineSchedule(ctx, a.cfg.MachineID)
	if err != nil {
		return fmt.Errorf("agent: read schedule: %w", err)
	}
	want := make(map[string]store.ScheduleEntry, len(entries))
	for _, e := range entries {
		want[e.Unit] = e
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error

	// 1. unload what is no longer scheduled here (or desired inactive)
	for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
		e, ok := want[name]
		if ok && e.DesiredState != fleet.JobStateInactive {
			continue
		}
		a.log.Info("unloading unit", "unit", name, "reason", "unit loaded but not scheduled here")
		if err := a.cfg.Runner.Unload(ctx, name); err != nil && !errors.Is(err, runner.ErrNotLoaded) {
			errs = append(errs, fmt.Errorf("unload %s: %w", name, err))
			continue
		}
		delete(a.loaded, name)
	}
	// 2. load new units and units whose hash changed
	for _, name := range slices.Sorted(maps.Keys(want)) {
		e := want[name]
		if e.DesiredState == fleet.JobStateInactive {
			continue
		}
		cur, ok := a.loaded[name]
		if ok && cur.hash == e.Hash {
			continue
		}
		u, err := a.cfg.Store.Unit(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("load %s: %w", name, err))
			continue
		}
		if u.Hash != e.Hash {
			// The schedule lags the unit (a --replace in flight); the
			// engine will catch up and wake us again.
			a.log.Debug("unit hash differs from schedule; waiting", "unit", name)
			if ok {
				continue
			}
		}
		if ok {
			a.log.Info("reloading unit", "unit", name, "reason", "unit loaded but hash differs to expected")
			if err := a.cfg.Runner.Unload(ctx, name); err != nil && !errors.Is(err, runner.ErrNotLoaded) {
				errs = append(errs, fmt.Errorf("unload %s: %w", name, err))
				continue
			}
			delete(a.loaded, name)
		}
		if err := a.cfg.Runner.Load(ctx, runner.Unit{Name: name, Hash: u.Hash, Options: u.Options}); err != nil {
			errs = append(errs, fmt.Errorf("load %s: %w", name, err))
			continue
		}
		a.loaded[name] = loadedUnit{hash: e.Hash, jobState: fleet.JobStateLoaded}
	}
	// 3. stop, then 4. start
	for _, pass := range []fleet.JobState{fleet.JobStateLoaded, fleet.JobStateLaunched} {
		for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
			e := want[name]
			cur := a.loaded[name]
			if e.DesiredState != pass || cur.jobState == pass {
				continue
			}
			var err error
			if pass == fleet.JobStateLoaded {
				err = a.cfg.Runner.Stop(ctx, name)
			} else {
				err = a.cfg.Runner.Start(ctx, name)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("set %s %s: %w", name, pass, err))
				continue
			}
			cur.jobState = pass
			a.loaded[name] = cur
		}
	}
	return errors.Join(errs...)
}

// Publish writes changed unit states on the machine's lease.
func (a *Agent) Publish(ctx context.Context) error {
	lease := a.cfg.Lease()
	if lease == 0 {
		return nil
	}
	states := a.cfg.Runner.States()
	a.mu.Lock()
	if lease != a.pubLease {
		// A new lease: everything published on the old one is gone.
		clear(a.published)
	}
	var put []fleet.UnitState
	cur := make(map[string]fleet.UnitState, len(a.loaded))
	for name, l := range a.loaded {
		rs, ok := states[name]
		st := fleet.UnitState{Name: name, MachineID: a.cfg.MachineID, Hash: l.hash, JobState: l.jobState}
		if ok {
			st.LoadState, st.ActiveState, st.SubState, st.Since = rs.LoadState, rs.ActiveState, rs.SubState, rs.Since
		} else {
			st.LoadState, st.ActiveState, st.SubState = "not-found", "inactive", "dead"
		}
		cur[name] = st
		if old, ok := a.published[name]; !ok || !old.Since.Equal(st.Since) || old != withSince(st, old.Since) {
			put = append(put, st)
		}
	}
	var del []string
	for name := range a.published {
		if _, ok := cur[name]; !ok {
			del = append(del, name)
		}
	}
	a.mu.Unlock()

	slices.SortFunc(put, func(x, y fleet.UnitState) int { return cmpString(x.Name, y.Name) })
	slices.Sort(del)
	if len(put) > 0 {
		if err := a.cfg.Store.PutUnitStates(ctx, lease, put); err != nil {
			return fmt.Errorf("agent: publish states: %w", err)
		}
	}
	if len(del) > 0 {
		if err := a.cfg.Store.DeleteUnitStates(ctx, a.cfg.MachineID, del); err != nil {
			return fmt.Errorf("agent: delete states: %w", err)
		}
	}
	a.mu.Lock()
	a.pubLease = lease
	for _, st := range put {
		a.published[st.Name] = st
	}
	for _, name := range del {
		delete(a.published, name)
	}
	a.mu.Unlock()
	return nil
}

func withSince(s fleet.UnitState, t time.Time) fleet.UnitState { s.Since = t; return s }

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

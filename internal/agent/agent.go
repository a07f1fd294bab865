package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"

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
	Lease func() etcdkv.LeaseID
	// Interval is the periodic resync interval.
	Interval time.Duration
	Logger   *slog.Logger
	// BeforeStop, if set, is called before the runner stops or unloads a
	// unit (the registry deregisters its endpoints there, so that load
	// balancers drop it before its processes die).
	BeforeStop func(ctx context.Context, unit string)
	// OnChange, if set, is called after every reconcile or publish round
	// (level-triggered: read Units and the runner's States there). It runs
	// on the agent's goroutine and must not block.
	OnChange func()
}

// Agent runs this machine's share of the schedule.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	loaded    map[string]loadedUnit      // what the runner holds, by unit name
	published map[string]fleet.UnitState // what is in etcd
	pubLease  etcdkv.LeaseID
	leaseLost atomic.Bool // LeaseLost was called; cleared once a lease is back (adopt.go)
}

type loadedUnit struct {
	hash     string
	options  []fleet.UnitOption
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

// resyncEvery is how many periodic ticks pass between full re-reads of the
// schedule (the other ticks reconcile against the watch-fed copy).
const resyncEvery = 12

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	sched := a.cfg.Store.FollowSchedule(a.cfg.MachineID)
	defer sched.Close()
	a.adoptRunning()
	changed := a.cfg.Runner.Changed()
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	ticks := 0
	for {
		if err := a.reconcile(ctx, sched); err != nil && ctx.Err() == nil {
			a.log.Warn("reconcile failed", "err", err)
		}
		if err := a.Publish(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("publishing unit states failed", "err", err)
		}
		a.notify()
		select {
		case <-ctx.Done():
			return nil
		case <-sched.Wake():
		case <-changed:
			// Only states changed: publish without reconciling.
			if err := a.Publish(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("publishing unit states failed", "err", err)
			}
			a.notify()
			continue
		case <-tick.C:
			if ticks++; ticks%resyncEvery == 0 {
				sched.Invalidate()
			}
		}
	}
}

// Reconcile makes the runner match this machine's schedule, read from etcd.
func (a *Agent) Reconcile(ctx context.Context) error {
	return a.reconcile(ctx, nil)
}

// reconcile makes the runner match the schedule: the follower's copy, or
// read from etcd if f is nil.
func (a *Agent) reconcile(ctx context.Context, f *store.ScheduleFollower) error {
	var entries []store.ScheduleEntry
	var err error
	lease, lost := a.cfg.Lease(), a.leaseLost.Load()
	if lost && f != nil {
		f.Invalidate() // the watch-fed copy may predate the loss
	}
	if f != nil {
		entries, err = f.Entries(ctx)
	} else {
		entries, _, err = a.cfg.Store.MachineSchedule(ctx, a.cfg.MachineID)
	}
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
	if lost {
		a.afterLeaseLossLocked(lease)
	}

	// 0. deregister everything this round will stop or unload, all at
	// once, so a round that stops many units waits for the registry's
	// deregistration delay once, not once per unit
	var stopping []string
	for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
		e, ok := want[name]
		if !ok || e.DesiredState == fleet.JobStateInactive ||
			(e.DesiredState == fleet.JobStateLoaded && a.loaded[name].jobState == fleet.JobStateLaunched) {
			stopping = append(stopping, name)
		}
	}
	a.beforeStopAll(ctx, stopping)

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
	// 2. load new units and units whose hash changed, their files read
	// from etcd in batches
	var toLoad []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		e := want[name]
		if e.DesiredState == fleet.JobStateInactive {
			continue
		}
		if cur, ok := a.loaded[name]; ok && cur.hash == e.Hash {
			continue
		}
		toLoad = append(toLoad, name)
	}
	var files map[string]fleet.Unit
	if len(toLoad) > 0 {
		if files, err = a.cfg.Store.UnitsByName(ctx, toLoad); err != nil {
			return fmt.Errorf("agent: read units: %w", err)
		}
	}
	for _, name := range toLoad {
		e := want[name]
		_, ok := a.loaded[name]
		u, found := files[name]
		if !found {
			errs = append(errs, fmt.Errorf("load %s: %w", name, store.ErrNotFound))
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
			a.beforeStop(ctx, name)
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
		a.loaded[name] = loadedUnit{hash: e.Hash, options: u.Options, jobState: fleet.JobStateLoaded}
	}
	// 3. stop, then 4. start
	for _, pass := range []fleet.JobState{fleet.JobStateLoaded, fleet.JobStateLaunched} {
		for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
			e := want[name]
			cur := a.loaded[name]
			if e.DesiredState != pass || cur.jobState == pass {
				continue
			}
			if pass == fleet.JobStateLaunched && lease == 0 {
				continue // no lease: the units may be running elsewhere
			}
			var err error
			if pass == fleet.JobStateLoaded {
				err = a.cfg.Runner.Stop(ctx, name) // deregistered in step 0
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

// beforeStopAll calls BeforeStop for every unit concurrently and waits.
func (a *Agent) beforeStopAll(ctx context.Context, units []string) {
	if a.cfg.BeforeStop == nil || len(units) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Go(func() { a.cfg.BeforeStop(ctx, u) })
	}
	wg.Wait()
}

func (a *Agent) beforeStop(ctx context.Context, unit string) {
	if a.cfg.BeforeStop != nil {
		a.cfg.BeforeStop(ctx, unit)
	}
}

func (a *Agent) notify() {
	if a.cfg.OnChange != nil {
		a.cfg.OnChange()
	}
}

// Units returns the units the agent has loaded into the runner, sorted by
// name.
func (a *Agent) Units() []runner.Unit {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]runner.Unit, 0, len(a.loaded))
	for _, name := range slices.Sorted(maps.Keys(a.loaded)) {
		l := a.loaded[name]
		out = append(out, runner.Unit{Name: name, Hash: l.hash, Options: l.options})
	}
	return out
}

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

	// round serializes reconcile rounds (Run's and Reconcile's). It is held
	// across a round's I/O, and only reconcile takes it: nothing that
	// reads the agent's state waits on it.
	round sync.Mutex

	// mu guards the fields below. It is held only to copy or update them,
	// never across etcd, the runner or BeforeStop.
	mu        sync.Mutex
	loaded    map[string]loadedUnit      // what the runner holds, by unit name
	published map[string]fleet.UnitState // what is in etcd
	pubLease  etcdkv.LeaseID
	leaseLost bool   // LeaseLost was called; cleared once a round sees a lease again (adopt.go)
	lostGen   uint64 // number of LeaseLost calls
	// repubAt is when a state Publish held back (startSettle) is due.
	repubAt time.Time
}

// startSettle: a unit the agent started less than this long ago whose
// runner state is still inactive or activating is not published yet. A
// simple service is active within a few milliseconds, so its start costs
// one state write (active) instead of three (inactive, activating,
// active), each a round trip ahead of the next; a unit that stays
// activating longer is published when startSettle has passed.
const startSettle = 15 * time.Millisecond

type loadedUnit struct {
	hash     string
	options  []fleet.UnitOption
	jobState fleet.JobState // loaded or launched
	// Job units ([X-Fleet] Job=true; jobs.go): job says it is one
	// (jobChecked: known from its options or its file), startedAt is when
	// the agent last started it (zero: adopted running), finished the
	// recorded result of the run since then ("" while not recorded).
	job        bool
	jobChecked bool
	startedAt  time.Time
	finished   string
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
	// Job records changing (a run recorded, records deleted so that a job
	// runs again: plan's rule 12) wake a round too.
	nctx, ncancel := context.WithCancel(ctx)
	defer ncancel()
	jobs := a.cfg.Store.Notify(nctx, "jobs/")
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	repub := time.NewTimer(time.Hour)
	defer repub.Stop()
	publish := func() {
		if err := a.Publish(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("publishing unit states failed", "err", err)
		}
		a.mu.Lock()
		at := a.repubAt
		a.mu.Unlock()
		repub.Stop()
		if !at.IsZero() {
			repub.Reset(max(time.Until(at), 0))
		}
		a.notify()
	}
	ticks := 0
	for {
		if err := a.reconcile(ctx, sched); err != nil && ctx.Err() == nil {
			a.log.Warn("reconcile failed", "err", err)
		}
		publish()
		select {
		case <-ctx.Done():
			return nil
		case <-sched.Wake():
		case <-jobs:
		case <-changed:
			// Only states changed: publish without reconciling.
			publish()
			continue
		case <-repub.C:
			publish()
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
// read from etcd if f is nil. It reads its inputs, plans (plan, pure) and
// executes the plan; a.mu is held only to copy or update the agent's
// fields, never across etcd, the runner or BeforeStop.
func (a *Agent) reconcile(ctx context.Context, f *store.ScheduleFollower) error {
	a.round.Lock()
	defer a.round.Unlock()

	// 1. inputs
	a.mu.Lock()
	lost, gen := a.leaseLost, a.lostGen
	a.mu.Unlock()
	lease := a.cfg.Lease()
	if lost && f != nil {
		f.Invalidate() // the watch-fed copy may predate the loss
	}
	var entries []store.ScheduleEntry
	var err error
	if f != nil {
		entries, err = f.Entries(ctx)
	} else {
		entries, _, err = a.cfg.Store.MachineSchedule(ctx, a.cfg.MachineID)
	}
	if err != nil {
		return fmt.Errorf("agent: read schedule: %w", err)
	}
	jobErr := a.adoptedJobs(ctx, entries)
	a.mu.Lock()
	loaded := maps.Clone(a.loaded)
	a.mu.Unlock()
	in := planInput{Schedule: entries, Loaded: loaded, HaveLease: lease != 0, LeaseLost: lost}
	var readErr error
	if need := filesNeeded(in); len(need) > 0 {
		if in.Files, err = a.cfg.Store.UnitsByName(ctx, need); err != nil {
			in.FilesUnread = true
			readErr = fmt.Errorf("agent: read units: %w", err)
		} else if err := a.pinnedFiles(ctx, in); err != nil {
			in.FilesUnread = true
			readErr = err
		}
	}

	if err := a.jobInputs(ctx, &in); err != nil {
		jobErr = errors.Join(jobErr, err)
	}

	// 2. plan
	acts := plan(in)
	if lost && lease != 0 {
		a.mu.Lock()
		if a.lostGen == gen { // not lost again since the inputs were read
			a.leaseLost = false
		}
		a.mu.Unlock()
	}

	// 3. execute
	errs := a.execute(ctx, acts, gen)
	return errors.Join(append(errs, readErr, jobErr)...)
}

// execute carries out a plan: the runner and BeforeStop are called without
// a.mu, which is taken only to record each outcome in a.loaded. Once an
// action on a unit fails, the unit's later actions are skipped (the next
// round plans again). gen is the lease-loss generation the plan's inputs
// saw: if LeaseLost is called meanwhile, nothing more is started.
func (a *Agent) execute(ctx context.Context, acts []action, gen uint64) []error {
	var errs []error
	failed := map[string]bool{}
	fail := func(name string, err error) {
		errs = append(errs, err)
		failed[name] = true
	}
	for _, act := range acts {
		name := act.unit
		if name != "" && failed[name] {
			continue
		}
		switch act.kind {
		case actMarkStopped:
			a.setJobState(name, fleet.JobStateLoaded)
		case actDeregister:
			a.beforeStopAll(ctx, act.units)
		case actUnload:
			if act.replace {
				a.log.Info("reloading unit", "unit", name, "reason", "unit loaded but hash differs to expected")
			} else {
				a.log.Info("unloading unit", "unit", name, "reason", "unit loaded but not scheduled here")
			}
			if err := a.cfg.Runner.Unload(ctx, name); err != nil && !errors.Is(err, runner.ErrNotLoaded) {
				fail(name, fmt.Errorf("unload %s: %w", name, err))
				continue
			}
			a.mu.Lock()
			delete(a.loaded, name)
			a.mu.Unlock()
		case actMissing:
			errs = append(errs, fmt.Errorf("load %s: %w", name, store.ErrNotFound))
		case actLoad:
			if act.file.Hash != act.hash {
				// The schedule lags the unit (a --replace in flight); the
				// engine will catch up and wake us again.
				a.log.Debug("unit hash differs from schedule; waiting", "unit", name)
			}
			if err := a.cfg.Runner.Load(ctx, act.file); err != nil {
				fail(name, fmt.Errorf("load %s: %w", name, err))
				continue
			}
			a.mu.Lock()
			a.loaded[name] = loadedUnit{hash: act.hash, options: act.file.Options, jobState: fleet.JobStateLoaded, job: IsJob(act.file.Options), jobChecked: true}
			a.mu.Unlock()
		case actStop:
			if act.rerun {
				a.log.Info("running job again", "unit", name, "reason", "its record was deleted")
			}
			if err := a.cfg.Runner.Stop(ctx, name); err != nil { // deregistered before
				fail(name, fmt.Errorf("set %s %s: %w", name, fleet.JobStateLoaded, err))
				continue
			}
			a.setJobState(name, fleet.JobStateLoaded)
		case actStart:
			if a.lostSince(gen) {
				continue // no lease any more: the unit may be running elsewhere
			}
			a.mu.Lock()
			if l, ok := a.loaded[name]; ok {
				l.startedAt, l.finished = time.Now(), ""
				a.loaded[name] = l
			}
			a.mu.Unlock()
			if err := a.cfg.Runner.Start(ctx, name); err != nil {
				fail(name, fmt.Errorf("set %s %s: %w", name, fleet.JobStateLaunched, err))
				continue
			}
			a.setJobState(name, fleet.JobStateLaunched)
			a.fenceAfterStart(ctx, name, gen)
		}
	}
	return errs
}

// setJobState records a loaded unit's job state.
func (a *Agent) setJobState(name string, js fleet.JobState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.loaded[name]; ok {
		l.jobState = js
		a.loaded[name] = l
	}
}

// lostSince reports whether LeaseLost was called after the inputs of
// generation gen were read.
func (a *Agent) lostSince(gen uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lostGen != gen
}

// Publish writes changed unit states on the machine's lease.
func (a *Agent) Publish(ctx context.Context) error {
	lease := a.cfg.Lease()
	if lease == 0 {
		return nil
	}
	states := a.cfg.Runner.States()
	// Job units whose run ended: their records first (no lease), so that a
	// reader who sees the final state finds the record too.
	jobErr := a.recordJobs(ctx, states)
	a.mu.Lock()
	if lease != a.pubLease {
		// A new lease: everything published on the old one is gone.
		clear(a.published)
	}
	var put []fleet.UnitState
	cur := make(map[string]fleet.UnitState, len(a.loaded))
	now := time.Now()
	a.repubAt = time.Time{}
	for name, l := range a.loaded {
		rs, ok := states[name]
		st := fleet.UnitState{Name: name, MachineID: a.cfg.MachineID, Hash: l.hash, JobState: l.jobState}
		if ok {
			st.LoadState, st.ActiveState, st.SubState, st.Since, st.Result, st.Exit = rs.LoadState, rs.ActiveState, rs.SubState, rs.Since, rs.Result, rs.Exit
		} else {
			st.LoadState, st.ActiveState, st.SubState = "not-found", "inactive", "dead"
		}
		if due := l.startedAt.Add(startSettle); ok && l.jobState == fleet.JobStateLaunched && now.Before(due) &&
			(st.ActiveState == "inactive" || st.ActiveState == "activating") {
			// Just started: publish once it is up, or at due.
			if old, was := a.published[name]; was {
				cur[name] = old
			} else {
				cur[name] = st
			}
			if a.repubAt.IsZero() || due.Before(a.repubAt) {
				a.repubAt = due
			}
			continue
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
	return jobErr
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

func (a *Agent) notify() {
	if a.cfg.OnChange != nil {
		a.cfg.OnChange()
	}
}

// Units returns the units the agent has loaded into the runner, sorted by
// name. It never waits for a round: during one it reports what the round
// has done so far.
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

// pinnedFiles replaces, in in.Files, a unit file whose hash is not the one
// the schedule names by that revision's file, when the cluster keeps it
// (revisions/): a rollout of a global unit pins machines to the revision
// they have reached while the unit's file is already the new one. A file
// whose revision is not kept stays as read (plan's rule 6 applies).
func (a *Agent) pinnedFiles(ctx context.Context, in planInput) error {
	for _, e := range in.Schedule {
		u, ok := in.Files[e.Unit]
		if !ok || u.Hash == e.Hash || e.Hash == "" {
			continue
		}
		rev, ok, err := a.cfg.Store.RevisionByHash(ctx, store.RevisionOwner(e.Unit), e.Hash)
		if err != nil {
			return fmt.Errorf("agent: read revision %s of %s: %w", e.Hash, e.Unit, err)
		}
		if ok {
			u.Options, u.Hash = rev.Options, rev.Hash
			in.Files[e.Unit] = u
		}
	}
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/schedule"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Config configures the engine loop.
type Config struct {
	Store     *store.Store
	MachineID string
	// LeaseTTL is the leader session's TTL: how long a dead leader blocks
	// scheduling. It is agent_ttl, and also the grace period during which
	// machines lost together with many others keep their units (hold.go).
	LeaseTTL time.Duration
	// Interval is the periodic reconcile interval (a safety net; changes
	// are handled as they happen).
	Interval time.Duration
	// Strategy is the scheduler's placement strategy (schedule.Snapshot's
	// Strategy: "spread", the default, or "binpack").
	Strategy string
	Logger   *slog.Logger
	// OnReconcile, when set, is called after every round (for metrics/tests).
	OnReconcile func(Stats)
	// WhileLeading, when set, runs beside the scheduling loop for as long
	// as this engine leads (the rollout driver); its ctx ends with the
	// leadership, and the engine waits for it to return before it
	// campaigns again. An error it returns is logged.
	WhileLeading func(ctx context.Context, lead *store.Leadership) error
}

// Stats describes one reconcile round.
type Stats struct {
	Units, Machines int
	Put, Deleted    int
	Unplaced        int
	Duration        time.Duration
}

// Engine schedules units while it holds leadership.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	reqs map[string]parsedReq // requirements by unit name, valid for hash
	hold holdState            // machines lost together with many others (hold.go); under mu
	now  func() time.Time     // the clock (tests replace it)
}

type parsedReq struct {
	hash string
	req  fleet.Requirements
	err  error
}

// maxDebounce bounds how long a wake-up waits for more changes to gather
// before the round starts (a quarter of the previous round's duration).
const maxDebounce = 20 * time.Millisecond

// New returns an engine; call Run.
func New(cfg Config) *Engine {
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 5 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: log.With("component", "engine"), reqs: map[string]parsedReq{}, now: time.Now}
}

// Run campaigns and schedules until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lead, err := e.cfg.Store.Campaign(ctx, e.cfg.MachineID, e.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e.log.Warn("campaign failed; retrying", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		e.log.Info("engine leadership acquired")
		err = e.lead(ctx, lead)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = lead.Resign(rctx)
			cancel()
			break
		}
		e.log.Warn("engine leadership lost", "err", err)
		// Delete the leader key if it is still ours and revoke its lease,
		// so that a lease nobody renews does not linger.
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = lead.Resign(rctx)
		cancel()
	}
	return nil
}

func (e *Engine) lead(ctx context.Context, lead *store.Leadership) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if e.cfg.WhileLeading != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := e.cfg.WhileLeading(ctx, lead); err != nil && ctx.Err() == nil {
				e.log.Warn("leader task ended", "err", err)
			}
		}()
		defer func() { cancel(); <-done }()
	}
	view := e.cfg.Store.NewView()
	defer view.Close()
	tick := time.NewTicker(e.cfg.Interval)
	defer tick.Stop()
	// A new leader decides afresh which machines to hold (from the
	// schedule it inherits).
	e.mu.Lock()
	e.hold = holdState{}
	e.mu.Unlock()
	holdTimer := time.NewTimer(time.Hour)
	holdTimer.Stop()
	defer holdTimer.Stop()
	for {
		start := time.Now()
		if err := e.reconcile(ctx, lead, view); err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.log.Warn("reconcile failed", "err", err)
		}
		took := time.Since(start)
		// Wake when a hold's settle or grace period ends.
		holdTimer.Stop()
		if at := e.holdWake(); !at.IsZero() {
			holdTimer.Reset(max(at.Sub(e.now()), 0) + time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lead.Done():
			return errors.New("leader session ended")
		case <-view.Wake():
			// Under load, let a burst of changes gather into one round.
			if d := min(took/4, maxDebounce); d > time.Millisecond {
				sleep(ctx, d)
			}
		case <-holdTimer.C:
		case <-tick.C:
			// The periodic round re-reads everything: a safety net against
			// a view that drifted.
			view.Invalidate()
		}
	}
}

// SetWhileLeading sets Config.WhileLeading; call it before Run (it lets a
// task that needs the engine, such as the rollout driver, be wired in after
// New).
func (e *Engine) SetWhileLeading(fn func(ctx context.Context, lead *store.Leadership) error) {
	e.cfg.WhileLeading = fn
}

// SurgeMachines reads a fresh snapshot and returns, for each of units,
// where a second copy of it could run now (schedule.SurgeMachines): the
// rollout driver starts new copies there when a rollout allows surge.
func (e *Engine) SurgeMachines(ctx context.Context, units []string) (map[string]string, error) {
	snap, err := e.cfg.Store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: surge machines: %w", err)
	}
	in, _ := e.input(snap)
	return schedule.SurgeMachines(in, units), nil
}

// Reconcile runs one round from a fresh snapshot: read, schedule, write the
// difference.
func (e *Engine) Reconcile(ctx context.Context, lead *store.Leadership) error {
	return e.reconcile(ctx, lead, nil)
}

// reconcile runs one round on view's content (a fresh snapshot if view is
// nil).
func (e *Engine) reconcile(ctx context.Context, lead *store.Leadership, view *store.View) error {
	start := time.Now()
	var snap store.Snapshot
	var err error
	if view != nil {
		snap, err = view.Snapshot(ctx)
	} else {
		snap, err = e.cfg.Store.Snapshot(ctx)
	}
	if err != nil {
		return fmt.Errorf("engine: snapshot: %w", err)
	}
	in, byName := e.input(snap)
	keep := e.updateHolds(snap)
	held := holdUnits(&in, keep)
	res := schedule.Schedule(in) // draining machines are schedule's business (its rule 12)
	skipSucceededJobs(&res, in, byName, snap.Jobs)
	applyHeld(&res, held, keep)
	rolloutPlacements(&res, snap, byName)
	ch := Changes(snap, byName, res)
	if !ch.Empty() {
		if err := e.cfg.Store.Apply(ctx, lead, ch); err != nil {
			if view != nil {
				view.Invalidate()
			}
			return fmt.Errorf("engine: apply: %w", err)
		}
		if view != nil {
			view.Applied(ch)
		}
		e.log.Debug("reconciled", "put", len(ch.Put), "deleted", len(ch.Delete), "unplaced", len(res.Reasons))
	}
	if e.cfg.OnReconcile != nil {
		e.cfg.OnReconcile(Stats{
			Units: len(snap.Units), Machines: len(snap.Machines),
			Put: len(ch.Put), Deleted: len(ch.Delete), Unplaced: len(res.Reasons),
			Duration: time.Since(start),
		})
	}
	return nil
}

func (e *Engine) input(snap store.Snapshot) (schedule.Snapshot, map[string]fleet.Unit) {
	byName := make(map[string]fleet.Unit, len(snap.Units))
	in := schedule.Snapshot{
		Strategy: e.cfg.Strategy,
		Machines: snap.Machines,
		Current:  make(map[string][]string, len(snap.Schedule)),
		Units:    make([]schedule.Unit, 0, len(snap.Units)),
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]bool, len(snap.Units))
	done := map[string]bool{} // Job units that succeeded
	for _, u := range snap.Units {
		if fleet.IsTemplate(u.Name) {
			continue
		}
		seen[u.Name] = true
		// Parsing requirements is the costly part of a round's input;
		// a unit's requirements change only with its hash.
		p, ok := e.reqs[u.Name]
		if !ok || p.hash != u.Hash {
			p.hash = u.Hash
			p.req, _, p.err = unitfile.Requirements(u.Name, u.Options)
			e.reqs[u.Name] = p
			if p.err != nil {
				// Stored units were validated on the way in; a unit that no
				// longer parses is simply not scheduled.
				e.log.Warn("unit requirements invalid; not scheduling", "unit", u.Name, "err", p.err)
			}
		}
		if p.err != nil {
			continue
		}
		if p.req.Job && !p.req.Global && jobSucceeded(snap.Jobs[u.Name], u.Hash) {
			done[u.Name] = true
			continue // done: never placed again (no reason either)
		}
		byName[u.Name] = u
		in.Units = append(in.Units, schedule.Unit{Name: u.Name, Desired: u.DesiredState, Req: p.req})
	}
	if len(e.reqs) > len(seen) {
		for name := range e.reqs {
			if !seen[name] {
				delete(e.reqs, name)
			}
		}
	}
	for _, s := range snap.Schedule {
		if done[s.Unit] {
			continue // a succeeded job leaves its machine
		}
		in.Current[s.Unit] = append(in.Current[s.Unit], s.Machine)
	}
	timerPlacements(in.Units, byName) // a launched timer's service goes with it (timers.go)
	return in, byName
}

// jobSucceeded reports whether one of a Job unit's records is a success of
// the file with hash.
func jobSucceeded(recs []store.JobRecord, hash string) bool {
	for _, r := range recs {
		if r.Succeeded(hash) {
			return true
		}
	}
	return false
}

// skipSucceededJobs takes out of res the machines where a global Job unit
// already succeeded with its current hash: a global job runs once on every
// matching machine. (A non-global job that succeeded somewhere is left out
// of the scheduler's input altogether: input.)
func skipSucceededJobs(res *schedule.Result, in schedule.Snapshot, units map[string]fleet.Unit, jobs map[string][]store.JobRecord) {
	if len(jobs) == 0 {
		return
	}
	for _, u := range in.Units {
		recs := jobs[u.Name]
		if !u.Req.Job || !u.Req.Global || len(recs) == 0 || len(res.Assign[u.Name]) == 0 {
			continue
		}
		done := map[string]bool{}
		for _, r := range recs {
			if r.Succeeded(units[u.Name].Hash) {
				done[r.Machine] = true
			}
		}
		if len(done) == 0 {
			continue
		}
		ms := slices.DeleteFunc(slices.Clone(res.Assign[u.Name]), func(m string) bool { return done[m] })
		if len(ms) == 0 {
			delete(res.Assign, u.Name)
		} else {
			res.Assign[u.Name] = ms
		}
	}
}

// updateHolds advances the engine's hold state with the snapshot's machines
// and schedule, logs holds starting and ending, and returns the machines
// whose units stay in place this round.
func (e *Engine) updateHolds(snap store.Snapshot) map[string]bool {
	live := make([]string, 0, len(snap.Machines))
	for _, m := range snap.Machines {
		live = append(live, m.ID)
	}
	var scheduled []string
	seen := make(map[string]bool)
	for _, s := range snap.Schedule {
		if !seen[s.Machine] {
			seen[s.Machine] = true
			scheduled = append(scheduled, s.Machine)
		}
	}
	now := e.now()
	ttl := e.cfg.LeaseTTL
	e.mu.Lock()
	next, ev := holds(e.hold, now, live, scheduled, ttl)
	e.hold = next
	keep := next.keep(now, ttl)
	e.mu.Unlock()
	if len(ev.Started) > 0 {
		e.log.Warn(fmt.Sprintf("%d of %d machines lost their leases at once; keeping their units in place for agent_ttl", ev.Lost, ev.Total),
			"held", ev.Started, "agent_ttl", ttl)
	}
	if len(ev.Returned) > 0 {
		e.log.Warn("held machines registered again; hold ended, their units stay", "machines", ev.Returned)
	}
	if len(ev.Expired) > 0 {
		e.log.Warn("held machines did not return within agent_ttl; hold ended, their units move", "machines", ev.Expired, "agent_ttl", ttl)
	}
	return keep
}

// holdWake returns when the hold state next changes on its own, or zero.
func (e *Engine) holdWake() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hold.next(e.now(), e.cfg.LeaseTTL)
}

// Changes computes the store writes that turn the snapshot's schedule and
// reasons into the scheduler's result. It is pure.
func Changes(snap store.Snapshot, units map[string]fleet.Unit, res schedule.Result) store.Changes {
	var ch store.Changes
	have := make(map[[2]string]store.ScheduleEntry, len(snap.Schedule))
	for _, s := range snap.Schedule {
		have[[2]string{s.Unit, s.Machine}] = s
	}
	for _, name := range slices.Sorted(maps.Keys(res.Assign)) {
		u := units[name]
		for _, m := range res.Assign[name] {
			want := store.ScheduleEntry{Unit: name, Machine: m, Hash: entryHash(snap.Rollouts, u, m), DesiredState: u.DesiredState}
			k := [2]string{name, m}
			if cur, ok := have[k]; !ok || cur != want {
				ch.Put = append(ch.Put, want)
			}
			delete(have, k)
		}
	}
	for _, s := range snap.Schedule {
		if _, stale := have[[2]string{s.Unit, s.Machine}]; stale {
			ch.Delete = append(ch.Delete, store.ScheduleEntry{Unit: s.Unit, Machine: s.Machine})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(res.Reasons)) {
		r := res.Reasons[name]
		if cur, ok := snap.Reasons[name]; !ok || !sameReason(cur, r) {
			ch.PutReasons = append(ch.PutReasons, r)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Reasons)) {
		if _, ok := res.Reasons[name]; !ok {
			ch.DeleteReasons = append(ch.DeleteReasons, name)
		}
	}
	return ch
}

// entryHash is the hash machine m must run of unit u: the unit's, unless
// a rollout pins it (a global unit's machine: rollout.Pin; a copy of a
// target moved with surge: rollout.Placement). A rollout's pins count only
// while the unit's file is one of the two revisions it moves between: a
// later plain replace of the file ends them, and every machine runs the
// new file.
func entryHash(rollouts map[string]rollout.Rollout, u fleet.Unit, m string) string {
	r, t, ok := rolloutOf(rollouts, u)
	switch {
	case !ok:
		return u.Hash
	case r.Global:
		if h, ok := rollout.Pin(r, m); ok && h != "" {
			return h
		}
	default:
		if hs, ok := rollout.Placement(r, t); ok && hs[m] != "" {
			return hs[m]
		}
	}
	return u.Hash
}

// rolloutOf returns the rollout whose pins apply to u (see entryHash) and,
// for a non-global one, u's target in it.
func rolloutOf(rollouts map[string]rollout.Rollout, u fleet.Unit) (rollout.Rollout, rollout.Target, bool) {
	if len(rollouts) == 0 {
		return rollout.Rollout{}, rollout.Target{}, false
	}
	r, ok := rollouts[store.RevisionOwner(u.Name)]
	if !ok || (u.Hash != r.ToHash && u.Hash != r.FromHash) {
		return rollout.Rollout{}, rollout.Target{}, false
	}
	if r.Global {
		return r, rollout.Target{}, r.Unit == u.Name
	}
	for _, t := range r.Targets {
		if t.Name == u.Name {
			return r, t, true
		}
	}
	return rollout.Rollout{}, rollout.Target{}, false
}

// rolloutPlacements puts the targets moved with surge where their rollout
// says (rollout.Placement: the old copy and the new one while it proves
// itself, then only the one that stays), in place of the scheduler's
// choice. Machines that are gone or draining are left out; a target left
// with none is placed by the scheduler.
func rolloutPlacements(res *schedule.Result, snap store.Snapshot, units map[string]fleet.Unit) {
	if len(snap.Rollouts) == 0 {
		return
	}
	usable := make(map[string]bool, len(snap.Machines))
	for _, m := range snap.Machines {
		usable[m.ID] = m.Metadata["draining"] != "true"
	}
	for _, r := range snap.Rollouts {
		if r.Global {
			continue
		}
		for _, t := range r.Targets {
			u, ok := units[t.Name]
			if !ok || u.DesiredState == fleet.JobStateInactive {
				continue
			}
			if _, t2, ok := rolloutOf(snap.Rollouts, u); !ok || t2.Name != t.Name {
				continue
			}
			hs, ok := rollout.Placement(r, t)
			if !ok {
				continue
			}
			var ms []string
			for m := range hs {
				if usable[m] {
					ms = append(ms, m)
				}
			}
			if len(ms) == 0 {
				continue
			}
			slices.Sort(ms)
			if res.Assign == nil {
				res.Assign = map[string][]string{}
			}
			res.Assign[t.Name] = ms
			delete(res.Reasons, t.Name)
		}
	}
}

func sameReason(a, b fleet.Reason) bool {
	return a.Unit == b.Unit && a.Summary == b.Summary && maps.Equal(a.PerMachine, b.PerMachine)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Package timerd drives the .timer units of one machine: fleetd runs one
// Driver next to the agent. The agent loads and starts a launched timer T
// in the runner like any unit (the exec runner keeps it active (waiting),
// without a process); the engine places the unit S that T activates on
// T's machine, desired at least loaded (engine/timers.go), so the agent
// loads S there and otherwise leaves it alone. The Driver starts S when T
// elapses.
//
// Contract:
//
//  1. Each round looks at the timers the runner has active here. A
//     timer's [Timer] section is read from the runner's copy of the unit
//     (UnitOptions, when the runner has it) or from the store, once per
//     hash, and parsed with timer.ParseTimer; one that does not parse is
//     skipped (the runner shows it failed to load).
//  2. The clock inputs (timer.State) are: Now (UTC); Booted, fleetd's
//     start; Activated, the runner's Since of the timer; UnitLastActive,
//     the latest of this Driver's last start of S, the start of S's
//     current active spell, and, when neither is known (the timer just
//     moved here), the timer's last trigger; UnitLastInactive, when S last
//     went inactive or failed here; RandomSeed, a hash (FNV-64a) of the
//     timer's name, the same on every machine; LastTrigger, from the
//     timer's record in the store (timers/<timer>, read when the timer is
//     first seen active, or re-activated, and after a lost race).
//  3. When timer.Due returns a slot and S is loaded here, the slot is
//     recorded with store.RecordTrigger, a compare-and-swap on the
//     record's LastTrigger, and only if that succeeds is S started
//     (runner.Start; a no-op while S is still running). So a slot fires at
//     most once in the cluster, also when two machines believe they run
//     the timer (a failover). A slot that is due while S is not loaded
//     (yet) waits for it. A slot recorded by a fleetd that died before
//     starting S is not fired again.
//  4. The record's Next (and Machine, Activates) is kept up to date,
//     written only when it changes (store.UpdateTimer); the runner is told
//     the next elapse too (SetTrigger, when it has it) for status.
//  5. The loop wakes at the earliest next elapse of the active timers, on
//     every state change of the runner (Watch, when it has it: a timer
//     just started, a unit just loaded), and at least every second (Poll)
//     as a safety net, every 100 ms while a due slot waits for its unit
//     to be loaded.
package timerd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/timer"
)

// Poll is the longest the Driver sleeps between two rounds.
const Poll = time.Second

// blockedPoll is how often a due slot whose unit is not loaded is retried.
const blockedPoll = 100 * time.Millisecond

// Store is what the Driver needs of the cluster store (*store.Store).
type Store interface {
	Unit(ctx context.Context, name string) (fleet.Unit, error)
	Timer(ctx context.Context, name string) (store.TimerRecord, bool, error)
	RecordTrigger(ctx context.Context, r store.TimerRecord, prev time.Time) (bool, error)
	UpdateTimer(ctx context.Context, r store.TimerRecord) (store.TimerRecord, error)
}

// Runner is what the Driver needs of the machine's runner.
type Runner interface {
	States() map[string]runner.State
	Start(ctx context.Context, name string) error
}

// optionsRunner is a runner that hands out the definition it loaded
// (exec.Runner).
type optionsRunner interface {
	UnitOptions(name string) ([]fleet.UnitOption, bool)
}

// triggerRunner is a runner that shows a timer's next elapse in its
// status (exec.Runner).
type triggerRunner interface {
	SetTrigger(name string, next time.Time)
}

// Config configures a Driver.
type Config struct {
	Store     Store
	Runner    Runner
	MachineID string
	// Booted is when fleetd started (OnBootSec=, OnStartupSec=).
	Booted time.Time
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Driver fires the timers of one machine. Run it with Run; Round is one
// step of it (tests).
type Driver struct {
	cfg    Config
	log    *slog.Logger
	timers map[string]*timerState
	units  map[string]*unitState
}

// timerState is what the Driver keeps of a timer active here.
type timerState struct {
	read     bool   // def and parseErr are set
	hash     string // runner hash the definition below was read for
	def      timer.Timer
	parseErr error
	since    time.Time // the runner's Since the record was read for
	rec      store.TimerRecord
	haveRec  bool
	blocked  bool // a due slot waits for its unit: logged once
}

// unitState is what the Driver observed of a unit its timers activate.
type unitState struct {
	started      time.Time // this Driver's last Start of it
	activeSince  time.Time // start of the current (or last) active spell seen
	wasActive    bool
	lastInactive time.Time
}

// New returns a Driver for cfg.
func New(cfg Config) *Driver {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Booted.IsZero() {
		cfg.Booted = cfg.Now()
	}
	return &Driver{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "timers"),
		timers: map[string]*timerState{},
		units:  map[string]*unitState{},
	}
}

// watchRunner is a runner that says when its states change, to any
// number of watchers (exec.Runner).
type watchRunner interface {
	Watch() <-chan struct{}
}

// Run drives the machine's timers until ctx ends.
func (d *Driver) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var changed <-chan struct{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
			// A timer may have started (or its unit loaded): look now,
			// rather than at the next poll, so that a slot soon after
			// its start is not late.
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		if w, ok := d.cfg.Runner.(watchRunner); ok {
			changed = w.Watch() // before the round: no change is missed
		}
		start := time.Now()
		wait := d.Round(ctx)
		// The wait counts from the round's start.
		t.Reset(max(wait-time.Since(start), 0))
	}
}

// Seed is the RandomSeed of a timer (RandomizedDelaySec=): a hash of its
// name, so that every machine draws the same delays.
func Seed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func activeish(s string) bool {
	switch s {
	case "active", "activating", "reloading", "deactivating":
		return true
	}
	return false
}

// observe updates what the Driver knows of the units timers activate.
func (d *Driver) observe(states map[string]runner.State) {
	for name, us := range d.units {
		st, ok := states[name]
		us.observe(st, ok)
	}
}

func (us *unitState) observe(st runner.State, loaded bool) {
	switch {
	case !loaded:
		us.wasActive = false
	case activeish(st.ActiveState):
		if !us.wasActive {
			us.activeSince = st.Since
		}
		us.wasActive = true
	default:
		us.wasActive = false
		if !st.Since.IsZero() {
			us.lastInactive = st.Since
		}
	}
}

// Round looks at every active timer once, fires those that are due, and
// returns how long to sleep before the next round.
func (d *Driver) Round(ctx context.Context) time.Duration {
	states := d.cfg.Runner.States()
	d.observe(states)
	now := d.cfg.Now()
	wait := Poll
	for name := range d.timers {
		if st, ok := states[name]; !ok || st.ActiveState != "active" {
			delete(d.timers, name) // re-read when it is active again
		}
	}
	for name, st := range states {
		if !strings.HasSuffix(name, ".timer") || st.ActiveState != "active" || st.LoadState != "loaded" {
			continue
		}
		w, err := d.timer(ctx, name, st, states, now)
		if err != nil {
			if ctx.Err() != nil {
				return wait
			}
			d.log.Warn("timer round", "timer", name, "err", err)
			w = Poll
		}
		wait = min(wait, w)
	}
	// Forget the units no active timer activates any more.
	targets := make(map[string]bool, len(d.timers))
	for _, ts := range d.timers {
		targets[ts.def.Unit] = true
	}
	for name := range d.units {
		if !targets[name] {
			delete(d.units, name)
		}
	}
	return max(wait, time.Millisecond)
}

// definition reads and parses the timer name as loaded with hash, unless
// it did already; the error is the read's or the parser's.
func (d *Driver) definition(ctx context.Context, ts *timerState, name, hash string) error {
	if ts.read && ts.hash == hash {
		return ts.parseErr
	}
	var opts []fleet.UnitOption
	if r, ok := d.cfg.Runner.(optionsRunner); ok {
		opts, ok = r.UnitOptions(name)
		if !ok {
			return fmt.Errorf("%w: %s", runner.ErrNotLoaded, name)
		}
	} else {
		u, err := d.cfg.Store.Unit(ctx, name)
		if err != nil {
			return err
		}
		opts = u.Options
	}
	ts.read, ts.hash = true, hash
	ts.def, ts.parseErr = timer.ParseTimer(name, opts)
	return ts.parseErr
}

// timer runs one timer's step and returns how long until it needs looking
// at again.
func (d *Driver) timer(ctx context.Context, name string, st runner.State, states map[string]runner.State, now time.Time) (time.Duration, error) {
	ts := d.timers[name]
	if ts == nil {
		ts = &timerState{}
		d.timers[name] = ts
	}
	if err := d.definition(ctx, ts, name, st.Hash); err != nil {
		if errors.Is(err, runner.ErrNotLoaded) || ts.parseErr != nil {
			// Unloaded meanwhile, or the runner shows the load error.
			return Poll, nil
		}
		return Poll, err
	}
	if !ts.haveRec || !ts.since.Equal(st.Since) {
		rec, _, err := d.cfg.Store.Timer(ctx, name)
		if err != nil {
			return Poll, err
		}
		ts.rec, ts.haveRec, ts.since = rec, true, st.Since
	}
	svc := ts.def.Unit
	us := d.units[svc]
	if us == nil {
		us = &unitState{}
		d.units[svc] = us
		sst, ok := states[svc]
		us.observe(sst, ok)
	}
	tst := d.state(name, ts, us, st, now)
	if slot, due := ts.def.Due(tst); due {
		if sst, ok := states[svc]; !ok || sst.LoadState == "" || sst.LoadState == "not-found" {
			if !ts.blocked {
				d.log.Info("timer elapsed; waiting for the unit it activates to be loaded here", "timer", name, "unit", svc, "slot", slot)
				ts.blocked = true
			}
			return blockedPoll, nil
		}
		ts.blocked = false
		after := tst
		after.LastTrigger = slot
		// Starting S makes it active now: the next OnUnitActiveSec= slot
		// counts from here.
		after.UnitLastActive = now.UTC()
		next, _ := ts.def.Next(after)
		rec := store.TimerRecord{Timer: name, Activates: svc, Machine: d.cfg.MachineID, LastTrigger: slot, Next: next}
		ok, err := d.cfg.Store.RecordTrigger(ctx, rec, ts.rec.LastTrigger)
		if err != nil {
			return Poll, err
		}
		if !ok {
			// Fired elsewhere (or by an earlier run of ours): re-read.
			d.log.Info("timer slot already fired; not firing it again", "timer", name, "slot", slot)
			ts.haveRec = false
			return 0, nil
		}
		ts.rec = rec
		us.started = now
		if err := d.cfg.Runner.Start(ctx, svc); err != nil {
			d.log.Warn("timer elapsed but its unit did not start", "timer", name, "unit", svc, "err", err)
		} else {
			d.log.Debug("timer elapsed", "timer", name, "unit", svc, "slot", slot, "late", now.Sub(slot))
		}
		tst = after
	}
	next, armed := ts.def.Next(tst)
	if !armed {
		next = time.Time{}
	}
	if !ts.rec.Next.Equal(next) || ts.rec.Machine != d.cfg.MachineID || ts.rec.Activates != svc {
		want := ts.rec
		want.Timer, want.Activates, want.Machine, want.Next = name, svc, d.cfg.MachineID, next
		got, err := d.cfg.Store.UpdateTimer(ctx, want)
		if err != nil {
			return Poll, err
		}
		if !got.LastTrigger.Equal(ts.rec.LastTrigger) {
			ts.haveRec = false // someone fired meanwhile: re-read
		}
		ts.rec = got
	}
	if r, ok := d.cfg.Runner.(triggerRunner); ok {
		r.SetTrigger(name, next)
	}
	if !armed {
		return Poll, nil
	}
	return next.Sub(now), nil
}

// state builds the clock inputs of a timer evaluation.
func (d *Driver) state(name string, ts *timerState, us *unitState, st runner.State, now time.Time) timer.State {
	lastActive := us.started
	if us.activeSince.After(lastActive) {
		lastActive = us.activeSince
	}
	if lastActive.IsZero() {
		lastActive = ts.rec.LastTrigger
	}
	return timer.State{
		Now:              now.UTC(),
		Booted:           utc(d.cfg.Booted),
		Activated:        utc(st.Since),
		LastTrigger:      utc(ts.rec.LastTrigger),
		UnitLastActive:   utc(lastActive),
		UnitLastInactive: utc(us.lastInactive),
		RandomSeed:       Seed(name),
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

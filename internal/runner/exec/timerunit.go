package exec

import (
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/timer"
	"github.com/fleetd/fleet/internal/unitfile"
)

// This file gives .timer units their runner side. A timer has no process:
// started, it is active (waiting) until stopped, inactive (dead) after.
// Deciding when it elapses and starting the unit it activates is the
// business of internal/timerd, which tells the runner the next elapse
// (SetTrigger) for Status's "Trigger:" line.

// parseTimerConfig interprets a .timer unit: its [Timer] section must
// parse (timer.ParseTimer), else the unit loads with LoadState "error" and
// the parser's message; of [Unit], only Description= is used. c holds the
// defaults parseConfig set.
func parseTimerConfig(c *config, name string, opts []fleet.UnitOption) (*config, error) {
	t, err := timer.ParseTimer(name, opts)
	if err != nil {
		return nil, err
	}
	c.typ = "timer"
	c.timer = &t
	c.guessMainPID = false
	for _, o := range opts {
		if o.Section == "Unit" && o.Name == "Description" {
			c.description = unitfile.JoinContinuations(o.Value)
		}
	}
	return c, nil
}

// runTimer is startOnce for a timer: active (waiting) until a stop
// request. It returns evStop (lifecycle then logs "Stopped X." and sets
// it inactive) or evQuit.
func (u *unit) runTimer(desc string) (string, event) {
	u.setState("active", "waiting")
	u.finishJob(true)
	u.logf("Started %s.", desc)
	u.setPhase(phaseRun)
	ev := u.waitFor(nil, nil, time.Time{}, true, 0)
	u.r.mu.Lock()
	u.trigger = time.Time{}
	u.r.mu.Unlock()
	if ev == evQuit {
		return "", evQuit
	}
	return resSuccess, evStop
}

// SetTrigger records when the timer unit name elapses next (zero: no
// trigger armed), for Status. It is a no-op for a unit that is not a
// loaded timer.
func (r *Runner) SetTrigger(name string, next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.units[name]; u != nil && u.cfg != nil && u.cfg.timer != nil {
		u.trigger = next
	}
}

// Watch returns a channel closed at the runner's next state change (any
// unit's). Unlike Changed, which has one receiver (the agent), any number
// of callers may watch: internal/timerd wakes on it when a timer starts.
func (r *Runner) Watch() <-chan struct{} { return r.bcastChan() }

// timerStatusLocked fills a timer's Trigger and Triggers (r.mu held).
func (u *unit) timerStatusLocked(st *runner.Status) {
	if u.cfg == nil || u.cfg.timer == nil {
		return
	}
	st.Triggers = u.cfg.timer.Unit
	if u.st.ActiveState == "active" {
		st.Trigger = u.trigger
	}
}

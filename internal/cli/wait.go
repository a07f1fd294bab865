package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/client"
)

// deadline returns when waiting with attempts gives up (zero time: never).
func (a *app) deadline(attempts int) time.Time {
	if attempts <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(attempts) * a.window)
}

// sleep waits one poll interval; false if the context ended.
func (a *app) sleep() bool {
	t := time.NewTimer(a.poll)
	defer t.Stop()
	select {
	case <-a.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pollUntil calls round with the names still pending (first all of names)
// until it leaves none (true), the wait of attempts runs out (see deadline)
// or the context ends (false). When it gives up it prints, after what
// ("Error waiting for units"), timedOut(name) for each name still pending,
// or the context's error.
func (a *app) pollUntil(names []string, attempts int, what string, round func(pending []string) []string, timedOut func(name string) string) bool {
	pending := append([]string(nil), names...)
	deadline := a.deadline(attempts)
	for {
		pending = round(pending)
		if len(pending) == 0 {
			return true
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			for _, name := range pending {
				a.errf("%s: %s", what, timedOut(name))
			}
			return false
		}
		if !a.sleep() {
			a.errf("%s: %v", what, a.ctx.Err())
			return false
		}
	}
}

// exitCode is the exit code of a wait: 0 if it succeeded.
func exitCode(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

// waitForJobStates polls the named (non-global) units until each reports
// current state want, printing "Unit X <state> on <machine>" as each gets
// there. attempts > 0 bounds the wait to attempts×2 s; 0 waits until the
// context ends. While a unit waits to be placed, the scheduler's reason is
// printed once (again only when it changes). It returns the exit code.
func (a *app) waitForJobStates(c *client.Client, names []string, want string, attempts int) int {
	shown := map[string]string{}
	round := -1
	return exitCode(a.pollUntil(names, attempts, "Error waiting for units", func(pending []string) []string {
		round++
		var still []string
		for _, name := range pending {
			u, err := c.Unit(a.ctx, name)
			switch {
			case err != nil:
				a.debugf("Error retrieving Unit(%s) from Registry: %v", name, err)
			case u == nil:
				a.debugf("Unit %s not found", name)
			case u.CurrentState == want:
				a.printUnitState(*u)
				continue
			case want == "launched" && a.jobRecorded(c, *u):
				continue // a Job unit whose run ended (a succeeded one left its machine)
			case want != "inactive" && u.MachineID == "" && round%4 == 0:
				a.showReason(c, name, shown)
			}
			still = append(still, name)
		}
		return still
	}, func(name string) string {
		return fmt.Sprintf("timed out waiting for unit %s to report state %s", name, want)
	}))
}

// printUnitState prints fleet's success line for a unit that reached its
// state.
func (a *app) printUnitState(u client.Unit) {
	msg := fmt.Sprintf("Unit %s %s", u.Name, u.CurrentState)
	if u.MachineID != "" {
		if m, ok := a.machineMap()[u.MachineID]; ok {
			msg += " on " + machineFullLegend(m, false)
		}
	}
	a.out("%s", msg)
}

// showReason prints why a unit cannot be scheduled, if the scheduler says
// so and it was not printed already.
func (a *app) showReason(c *client.Client, name string, shown map[string]string) {
	r, err := c.Reason(a.ctx, name)
	if err != nil {
		a.debugf("Error retrieving scheduling reason of %s: %v", name, err)
		return
	}
	if r == nil || r.Summary == "" || shown[name] == r.Summary {
		return
	}
	shown[name] = r.Summary
	a.errf("Unit %s cannot be scheduled: %s", name, r.Summary)
}

// waitForSystemdActive polls the named units until systemd reports them
// loaded and active on their machine. Unlike fleet (which gave up after
// one 2 s window), it honours attempts like the job-state wait. A unit
// that stays failed for a while is reported as an error.
//
// A Type=oneshot unit without RemainAfterExit=yes is waited for until it
// has run (see oneshot.go): "Unit X ran on M (exit status 0)", or an
// error naming the failure. baseline holds, per such unit and machine,
// an earlier run that does not count (from oneshotBaseline; may be nil).
func (a *app) waitForSystemdActive(c *client.Client, names []string, attempts int, baseline map[string]map[string]string) int {
	failedSince := map[string]time.Time{}
	last := map[string]client.UnitState{}
	hashes := map[string]string{}
	runOnce := map[string]bool{}
	jobs := map[string]client.Unit{} // Job units: over once their run is recorded
	for _, name := range names {
		if u, err := c.Unit(a.ctx, name); err == nil && u != nil {
			hashes[name] = unitHash(*u)
			runOnce[name] = isRunOnce(*u)
			if isJobUnit(*u) {
				jobs[name] = *u
			}
		}
	}
	exit := 0
	done := a.pollUntil(names, attempts, "Error waiting for systemd unit states", func(pending []string) []string {
		var still []string
		for _, name := range pending {
			if u, ok := jobs[name]; ok {
				if runs, ok := a.jobFinished(c, u); ok {
					exit = max(exit, a.printJobRuns(name, runs))
					continue
				}
			}
			states, err := c.UnitStatesFiltered(a.ctx, name, "")
			if err != nil {
				a.debugf("Error retrieving state of %s: %v", name, err)
				still = append(still, name)
				continue
			}
			s, ok := pickState(states, hashes[name])
			if ok {
				last[name] = s
			}
			if ok && runOnce[name] && s.SystemdLoadState == "loaded" {
				switch v, e := a.oneshotOutcome(c, name, s, baseline[name]); v {
				case oneshotDone:
					exit = max(exit, e)
					continue
				case oneshotEarlier:
					delete(failedSince, name)
					still = append(still, name)
					continue
				}
			}
			switch {
			case ok && s.SystemdLoadState == "loaded" && s.SystemdActiveState == "active":
				continue
			case ok && s.SystemdActiveState == "failed":
				if failedSince[name].IsZero() {
					failedSince[name] = time.Now()
				} else if time.Since(failedSince[name]) >= a.failedGrace {
					a.errf("Error waiting for systemd unit states: unit %s failed on %s (%s/%s); see fleetctl status %s and fleetctl journal %s",
						name, a.legend(s.MachineID, false), s.SystemdActiveState, s.SystemdSubState, name, name)
					exit = 1
					continue
				}
			default:
				delete(failedSince, name)
			}
			still = append(still, name)
		}
		return still
	}, func(name string) string {
		now := "no state reported"
		if s, ok := last[name]; ok {
			now = fmt.Sprintf("%s/%s/%s", s.SystemdLoadState, s.SystemdActiveState, s.SystemdSubState)
		}
		what := fmt.Sprintf("timed out waiting for unit %s to become active", name)
		if runOnce[name] {
			what = describeRunOnce(name)
		}
		return fmt.Sprintf("%s (now %s)", what, now)
	})
	if !done {
		return 1
	}
	return exit
}

// pickState chooses the state to judge a non-global unit by, among those
// of its current definition (hash; a state of a replaced definition does
// not count): an active one if any machine reports one, else the first.
func pickState(states []client.UnitState, hash string) (client.UnitState, bool) {
	var cur []client.UnitState
	for _, s := range states {
		if sameHash(s.Hash, hash) {
			cur = append(cur, s)
		}
	}
	if len(cur) == 0 {
		return client.UnitState{}, false
	}
	for _, s := range cur {
		if s.SystemdActiveState == "active" {
			return s, true
		}
	}
	return cur[0], true
}

// sameHash compares a reported (possibly short) hash with a full one; an
// unknown side matches anything.
func sameHash(reported, full string) bool {
	if reported == "" || full == "" {
		return true
	}
	return strings.HasPrefix(full, reported) || strings.HasPrefix(reported, full)
}

// waitForDestroyed polls until the named units are gone from the registry.
func (a *app) waitForDestroyed(c *client.Client, names []string, attempts int) int {
	return exitCode(a.pollUntil(names, attempts, "Error waiting for units", func(pending []string) []string {
		var still []string
		for _, name := range pending {
			u, err := c.Unit(a.ctx, name)
			if err == nil && u == nil {
				continue
			}
			if err != nil {
				a.debugf("Error retrieving Unit(%s) from Registry: %v", name, err)
			}
			still = append(still, name)
		}
		return still
	}, func(name string) string {
		return fmt.Sprintf("timed out waiting for unit %s to be destroyed", name)
	}))
}

// waitForGlobalInactive polls until no machine reports the global unit
// active (used by restart between stop and start).
func (a *app) waitForGlobalInactive(c *client.Client, name string, attempts int) bool {
	deadline := a.deadline(attempts)
	for {
		states, err := c.UnitStatesFiltered(a.ctx, name, "")
		if err == nil {
			busy := false
			for _, s := range states {
				switch s.SystemdActiveState {
				case "active", "activating", "reloading", "deactivating":
					busy = true
				}
			}
			if !busy {
				return true
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return false
		}
		if !a.sleep() {
			return false
		}
	}
}

// jobRecorded reports whether u is a Job unit whose current file's run is
// recorded (start's job-state wait is then over: a succeeded job leaves its
// machine, and its current state is inactive again).
func (a *app) jobRecorded(c *client.Client, u client.Unit) bool {
	_, ok := a.jobFinished(c, u)
	return ok
}

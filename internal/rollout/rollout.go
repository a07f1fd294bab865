package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// New validates spec and targets (Validate) and returns a new record in
// PhaseRunning with every target pending. It does not start the first
// batch: the first Step does.
func New(spec Spec, targets []string, now time.Time) (Rollout, error) {
	if err := Validate(spec, targets); err != nil {
		return Rollout{}, err
	}
	ts := make([]Target, len(targets))
	for i, name := range targets {
		ts[i] = Target{Name: name, Status: TargetPending}
	}
	return Rollout{
		Spec:    spec,
		Phase:   PhaseRunning,
		Targets: ts,
		Created: now,
		Updated: now,
	}, nil
}

// Validate reports the first problem of spec and targets, or nil. An empty
// targets list is valid: the caller decides what to do with it.
func Validate(spec Spec, targets []string) error {
	switch {
	case spec.Unit == "":
		return errors.New("unit name is required")
	case spec.MaxParallel < 1:
		return errors.New("max-parallel must be at least 1")
	case spec.MaxSurge < 0:
		return fmt.Errorf("max-surge must not be negative, got %d", spec.MaxSurge)
	case spec.MinHealthyTime < 0:
		return fmt.Errorf("min-healthy-time must not be negative, got %s", spec.MinHealthyTime)
	case spec.HealthyDeadline <= 0:
		return fmt.Errorf("healthy-deadline must be positive, got %s", spec.HealthyDeadline)
	case spec.HealthyDeadline < spec.MinHealthyTime:
		return fmt.Errorf("healthy-deadline (%s) must be at least min-healthy-time (%s)", spec.HealthyDeadline, spec.MinHealthyTime)
	case spec.ToHash == "":
		return fmt.Errorf("no revision to roll %s to: target hash is empty", spec.Unit)
	case spec.ToHash == spec.FromHash:
		return fmt.Errorf("nothing to roll: %s is already at revision %d (%s)", spec.Unit, spec.FromRevision, shortHash(spec.FromHash))
	}
	seen := make(map[string]bool, len(targets))
	for i, name := range targets {
		if name == "" {
			return fmt.Errorf("target %d of %s has an empty name", i+1, spec.Unit)
		}
		if seen[name] {
			return fmt.Errorf("duplicate target %q", name)
		}
		seen[name] = true
	}
	return nil
}

// Counts returns how many targets are in each state: inFlight counts the
// updating and reverting ones.
func (r Rollout) Counts() (pending, inFlight, updated, failed, reverted int) {
	for _, t := range r.Targets {
		switch t.Status {
		case TargetPending:
			pending++
		case TargetUpdating, TargetReverting:
			inFlight++
		case TargetUpdated:
			updated++
		case TargetFailed, TargetRevertFailed:
			failed++
		case TargetReverted:
			reverted++
		}
	}
	return
}

// Pause stops r from starting new batches; a batch in flight is still
// watched. Only a running rollout can be paused.
func Pause(r Rollout, now time.Time) (Rollout, error) {
	switch {
	case r.Phase == PhaseRunning:
		r.Phase, r.Updated = PhasePaused, now
		return r, nil
	case r.Phase == PhasePaused:
		return r, fmt.Errorf("rollout of %s is already paused", r.Unit)
	case r.Phase.Terminal():
		return r, fmt.Errorf("rollout of %s is %s; nothing to pause", r.Unit, r.Phase)
	default:
		return r, fmt.Errorf("rollout of %s is %s; only a running rollout can be paused", r.Unit, r.Phase)
	}
}

// Resume lets a paused r start new batches again.
func Resume(r Rollout, now time.Time) (Rollout, error) {
	switch {
	case r.Phase == PhasePaused:
		r.Phase, r.Updated = PhaseRunning, now
		return r, nil
	case r.Phase == PhaseRunning:
		return r, fmt.Errorf("rollout of %s is not paused", r.Unit)
	case r.Phase.Terminal():
		return r, fmt.Errorf("rollout of %s is %s; nothing to resume", r.Unit, r.Phase)
	default:
		return r, fmt.Errorf("rollout of %s is %s; only a paused rollout can be resumed", r.Unit, r.Phase)
	}
}

// Abort ends a rollout that is not over: phase aborted, Reason reason.
// Targets stay where they are (see Pin).
func Abort(r Rollout, reason string, now time.Time) (Rollout, error) {
	if r.Phase.Terminal() {
		return r, fmt.Errorf("rollout of %s is %s; nothing to abort", r.Unit, r.Phase)
	}
	r.Phase, r.Reason, r.Updated = PhaseAborted, reason, now
	return r, nil
}

// Pin returns the hash machine must run under r, a global rollout:
// FromHash while pending, reverting or reverted, ToHash while updating,
// updated or failed. ok is false if machine is not one of r's targets (or
// its status is unknown).
func Pin(r Rollout, machine string) (hash string, ok bool) {
	for _, t := range r.Targets {
		if t.Name != machine {
			continue
		}
		switch t.Status {
		case TargetPending, TargetReverting, TargetReverted, TargetRevertFailed:
			return r.FromHash, true
		case TargetUpdating, TargetUpdated, TargetFailed:
			return r.ToHash, true
		}
		return "", false
	}
	return "", false
}

// Progress is one line for people about where r is.
func Progress(r Rollout) string {
	pending, inFlight, updated, _, reverted := r.Counts()
	n := len(r.Targets)
	switch r.Phase {
	case PhaseDone:
		return fmt.Sprintf("done: %d/%d updated", updated, n)
	case PhaseFailed:
		return "failed: " + orDefault(r.Reason, "unknown reason")
	case PhaseReverted:
		s := fmt.Sprintf("reverted: %d/%d back at revision %d", reverted, n-pending, r.FromRevision)
		if r.Reason != "" {
			s += " after " + r.Reason
		}
		return s
	case PhaseAborted:
		s := "aborted"
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		return s + fmt.Sprintf(" (%d/%d updated)", updated, n)
	case PhaseReverting:
		touched := n - pending
		s := fmt.Sprintf("reverting: %d/%d reverted", reverted, touched)
		if inFlight > 0 {
			s += fmt.Sprintf(", %d in progress, %s", inFlight, waiting(r))
		}
		if r.Reason != "" {
			s += "; failed: " + r.Reason
		}
		return s
	case PhaseRunning, PhasePaused:
		s := fmt.Sprintf("%d/%d updated", updated, n)
		switch {
		case inFlight > 0:
			s += fmt.Sprintf(", %d in progress, %s", inFlight, waiting(r))
		case r.Phase == PhaseRunning && pending > 0:
			s += ", starting next batch"
		}
		if r.Phase == PhasePaused {
			s = "paused: " + s
		}
		return s
	}
	return fmt.Sprintf("%s: %d/%d updated", orDefault(string(r.Phase), "unknown phase"), updated, n)
}

// waiting says what the targets in flight wait for.
func waiting(r Rollout) string {
	for _, t := range r.Targets {
		if (t.Status == TargetUpdating || t.Status == TargetReverting) && t.HealthySince.IsZero() {
			return "waiting for health"
		}
	}
	return fmt.Sprintf("healthy, waiting out min-healthy-time %s", r.MinHealthyTime)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// shortHash is the 7-character form of a unit hash.
func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// shortMachine is the 8-character form of a machine ID (as fleetctl shows
// it).
func shortMachine(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// displayName is a target's name in a batch list: a unit name without
// ".service", a short machine ID.
func displayName(r *Rollout, name string) string {
	if r.Global {
		return shortMachine(name)
	}
	return strings.TrimSuffix(name, ".service")
}

// label names a target in a failure message: the unit, or the unit on a
// machine for a global rollout.
func label(r *Rollout, name string) string {
	if r.Global {
		return r.Unit + " on " + shortMachine(name)
	}
	return name
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func targetsWord(r *Rollout, n int) string {
	if r.Global {
		return plural(n, "machine", "machines")
	}
	return plural(n, "target", "targets")
}

// Step decides what happens next to r given what the cluster shows (obs,
// by target name; a missing observation counts as not Present) at now. It
// returns the next record, the writes to make with it and the events to
// emit. See the package documentation for the rules. Step never modifies
// r.
func Step(r Rollout, obs map[string]Observation, now time.Time) (Rollout, []Action, []Event) {
	switch r.Phase {
	case PhaseRunning, PhasePaused, PhaseReverting:
	default:
		// Terminal, or a phase this version does not know: leave it.
		return r, nil, nil
	}
	s := &stepper{next: r, obs: obs, now: now}
	s.next.Targets = slices.Clone(r.Targets)
	s.run()
	if s.changed(r) {
		s.next.Updated = now
	}
	return s.next, s.actions, s.events
}

type stepper struct {
	next    Rollout
	obs     map[string]Observation
	now     time.Time
	actions []Action
	events  []Event
}

func (s *stepper) emit(typ, format string, args ...any) {
	s.events = append(s.events, Event{Type: typ, Message: fmt.Sprintf(format, args...)})
}

func (s *stepper) changed(old Rollout) bool {
	n := &s.next
	if len(s.actions) > 0 || len(s.events) > 0 || n.Phase != old.Phase || n.Reason != old.Reason || n.Batches != old.Batches {
		return true
	}
	return !slices.Equal(n.Targets, old.Targets)
}

func (s *stepper) run() {
	r := &s.next
	if r.Phase == PhaseReverting {
		s.revert(false)
		return
	}
	if r.Phase == PhaseRunning && r.Batches == 0 && neverStarted(r.Targets) {
		s.emit(EventStarted, "rollout of %s to revision %d (%s) started: %s, %d at a time",
			r.Unit, r.ToRevision, shortHash(r.ToHash), targetsWord(r, len(r.Targets)), r.MaxParallel)
	}

	// Rules 2 and 3: watch the batch in flight (also when paused).
	promoted, failed := s.observe(TargetUpdating, TargetUpdated, r.ToHash)
	if len(failed) > 0 {
		reason := r.Targets[failed[0]].Message
		r.Reason = reason
		if r.AutoRevert {
			s.emit(EventFailed, "rollout of %s to revision %d failed: %s; reverting to revision %d",
				r.Unit, r.ToRevision, reason, r.FromRevision)
			r.Phase = PhaseReverting
			s.revert(true)
			return
		}
		s.emit(EventFailed, "rollout of %s to revision %d failed: %s", r.Unit, r.ToRevision, reason)
		r.Phase = PhaseFailed
		return
	}
	if len(promoted) > 0 && count(r.Targets, TargetUpdating) == 0 {
		// The batch the promoted targets belong to: those moved with them.
		started := r.Targets[promoted[len(promoted)-1]].Started
		var names []string
		for _, t := range r.Targets {
			if t.Status == TargetUpdated && t.Started.Equal(started) {
				names = append(names, displayName(r, t.Name))
			}
		}
		total := r.Batches + 1 + ceilDiv(count(r.Targets, TargetPending), r.MaxParallel)
		r.Batches++
		s.emit(EventBatch, "batch %d/%d healthy: %s", r.Batches, total, strings.Join(names, ", "))
	}

	// Rule 4: the next batch, or done.
	if count(r.Targets, TargetUpdating) > 0 {
		return
	}
	pending := count(r.Targets, TargetPending)
	if pending == 0 {
		r.Phase = PhaseDone
		s.emit(EventDone, "rollout of %s to revision %d (%s) done: %d/%d updated",
			r.Unit, r.ToRevision, shortHash(r.ToHash), count(r.Targets, TargetUpdated), len(r.Targets))
		return
	}
	if r.Phase != PhaseRunning {
		return // paused: no new batch
	}
	n := min(r.MaxParallel, pending)
	surging := 0
	for _, t := range r.Targets {
		if t.Status == TargetUpdating && t.Machine != "" && t.Surge != "" {
			surging++
		}
	}
	for i := range r.Targets {
		if n <= 0 {
			break
		}
		if r.Targets[i].Status == TargetPending {
			s.move(i, TargetUpdating, r.ToHash)
			n--
			// Surge: the new copy starts on another machine, the old one
			// keeps serving until the new one is healthy.
			o := s.obs[r.Targets[i].Name]
			if !r.Global && surging < r.MaxSurge && o.Machine != "" && o.SurgeTo != "" && o.SurgeTo != o.Machine {
				r.Targets[i].Machine, r.Targets[i].Surge = o.Machine, o.SurgeTo
				surging++
			}
		}
	}
}

// revert is rule 6: entering says the phase just became reverting.
func (s *stepper) revert(entering bool) {
	r := &s.next
	if entering {
		s.actions = append(s.actions, Action{Kind: SetFile, Target: r.Unit, Hash: r.FromHash})
	} else {
		_, failed := s.observe(TargetReverting, TargetReverted, r.FromHash)
		if len(failed) > 0 {
			msg := r.Targets[failed[0]].Message
			r.Phase = PhaseFailed
			r.Reason = "revert failed: " + msg
			s.emit(EventFailed, "revert of %s to revision %d failed: %s", r.Unit, r.FromRevision, msg)
			return
		}
	}
	if count(r.Targets, TargetReverting) > 0 {
		return
	}
	// The next batch: targets already in flight first (so no more than
	// MaxParallel are ever in flight), then the failed ones, then the
	// updated ones, each in Targets order.
	var cands []int
	for _, st := range []TargetStatus{TargetUpdating, TargetFailed, TargetUpdated} {
		for i, t := range r.Targets {
			if t.Status == st {
				cands = append(cands, i)
			}
		}
	}
	if len(cands) == 0 {
		r.Phase = PhaseReverted
		s.emit(EventReverted, "rollout of %s to revision %d reverted: %s back at revision %d (%s)",
			r.Unit, r.ToRevision, targetsWord(r, count(r.Targets, TargetReverted)), r.FromRevision, shortHash(r.FromHash))
		return
	}
	for _, i := range cands[:max(0, min(r.MaxParallel, len(cands)))] {
		s.move(i, TargetReverting, r.FromHash)
	}
}

// move sets target i moving to hash with status st, with one SetHash. A
// target moved back while its old copy still runs (a surge in flight or
// failed) goes back to that copy alone; one whose old copy is gone is
// replaced in place where its new copy runs.
func (s *stepper) move(i int, st TargetStatus, hash string) {
	t := &s.next.Targets[i]
	t.Status, t.Started, t.HealthySince, t.Message = st, s.now, time.Time{}, ""
	switch {
	case st != TargetReverting:
		t.Machine, t.Surge = "", ""
	case t.Machine != "":
		t.Surge = ""
	}
	s.actions = append(s.actions, Action{Kind: SetHash, Target: t.Name, Hash: hash})
}

// observe applies rules 2 and 3 to the targets with status moving (to
// hash): those healthy for MinHealthyTime get status done, those that
// failed get TargetFailed (TargetRevertFailed when moving back) and a
// Message. It returns both sets of indexes.
func (s *stepper) observe(moving, done TargetStatus, hash string) (promoted, failed []int) {
	r := &s.next
	failStatus := TargetFailed
	if moving == TargetReverting {
		failStatus = TargetRevertFailed
	}
	for i := range r.Targets {
		t := &r.Targets[i]
		if t.Status != moving {
			continue
		}
		o := s.obs[t.Name]
		if o.Present && o.Hash == hash && o.ActiveState == "failed" {
			t.Status, t.HealthySince = failStatus, time.Time{}
			t.Message = failMessage(r, t.Name, describe(o, hash), 0, o.Detail)
			dropSurge(t)
			failed = append(failed, i)
			continue
		}
		healthy := o.Present && o.Hash == hash && healthyState(o.ActiveState, o.SubState) && o.ChecksPassing
		if healthy {
			if t.HealthySince.IsZero() {
				t.HealthySince = s.now
			}
			if s.now.Sub(t.HealthySince) >= r.MinHealthyTime {
				t.Status = done
				if moving == TargetUpdating && t.Surge != "" {
					t.Machine = "" // the new copy is healthy: the old one goes
				}
				promoted = append(promoted, i)
				continue
			}
		} else {
			t.HealthySince = time.Time{}
		}
		if waited := s.now.Sub(t.Started); waited >= r.HealthyDeadline {
			state := describe(o, hash)
			if healthy {
				state = fmt.Sprintf("healthy for only %s of %s", roundDuration(s.now.Sub(t.HealthySince)), r.MinHealthyTime)
			}
			t.Status, t.HealthySince = failStatus, time.Time{}
			t.Message = failMessage(r, t.Name, state, waited, o.Detail)
			dropSurge(t)
			failed = append(failed, i)
		}
	}
	return promoted, failed
}

// failMessage is a target's failure Message: "web@3.service: failed
// (exit-code): detail", or for a deadline "web@3.service: activating
// start-pre, not healthy after 5m0s: detail".
func failMessage(r *Rollout, name, state string, waited time.Duration, detail string) string {
	msg := label(r, name) + ": " + state
	if waited > 0 {
		msg += ", not healthy after " + roundDuration(waited).String()
	}
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}

// describe says what state o shows, for a target moving to hash.
func describe(o Observation, hash string) string {
	switch {
	case !o.Present:
		return "not running"
	case o.Hash != hash:
		if o.Hash == "" {
			return "no hash reported, want " + shortHash(hash)
		}
		return fmt.Sprintf("still at %s, want %s", shortHash(o.Hash), shortHash(hash))
	case o.ActiveState == "failed":
		if o.SubState == "" || o.SubState == "failed" {
			return "failed"
		}
		return "failed (" + o.SubState + ")"
	case !healthyState(o.ActiveState, o.SubState):
		return strings.TrimSpace(orDefault(o.ActiveState, "unknown state") + " " + o.SubState)
	case !o.ChecksPassing:
		return "health checks failing"
	}
	return "healthy"
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d
}

func neverStarted(ts []Target) bool {
	for _, t := range ts {
		if t.Status != TargetPending || !t.Started.IsZero() {
			return false
		}
	}
	return true
}

func count(ts []Target, st TargetStatus) int {
	n := 0
	for _, t := range ts {
		if t.Status == st {
			n++
		}
	}
	return n
}

func ceilDiv(a, b int) int {
	if b < 1 {
		b = 1
	}
	return (a + b - 1) / b
}

// dropSurge ends a failed target's surge: while its old copy runs, the new
// copy goes and the old one stays.
func dropSurge(t *Target) {
	if t.Machine != "" {
		t.Surge = ""
	}
}

// WatchMachine is the machine whose state judges t's health: the new copy
// of a surging target, the old copy of one moved back to it; "" for a
// target replaced in place (its only state counts).
func WatchMachine(t Target) string {
	switch t.Status {
	case TargetUpdating:
		return t.Surge
	case TargetReverting:
		if t.Machine != "" {
			return t.Machine
		}
		return t.Surge
	}
	return ""
}

// Placement says where target t of a (non-global) rollout r must run, with
// the hash each copy runs: its old copy (Machine) runs FromHash; its new
// copy (Surge) runs ToHash, or FromHash once moved back. ok is false for a
// target that was not moved with surge: the scheduler places it.
func Placement(r Rollout, t Target) (hashes map[string]string, ok bool) {
	if r.Global || (t.Machine == "" && t.Surge == "") {
		return nil, false
	}
	hashes = map[string]string{}
	if t.Machine != "" {
		hashes[t.Machine] = r.FromHash
	}
	if t.Surge != "" {
		switch t.Status {
		case TargetReverting, TargetReverted, TargetRevertFailed:
			hashes[t.Surge] = r.FromHash
		default:
			hashes[t.Surge] = r.ToHash
		}
	}
	return hashes, true
}

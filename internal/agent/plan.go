package agent

import (
	"maps"
	"slices"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
)

// This file is the agent's pure decision step: plan turns what a round
// read (the machine's schedule, the agent's record of what the runner
// holds, the unit files, the lease situation) into an ordered list of
// actions. It does no I/O, reads no clock and takes no lock; reconcile
// (agent.go) reads its inputs and executes the actions it returns.

// actionKind is what an action does.
type actionKind int

const (
	// actMarkStopped records a fenced unit ([X-Fleet] StopOnDisconnect)
	// as stopped: LeaseLost already stopped it in the runner (rule 1). No
	// runner call.
	actMarkStopped actionKind = iota
	// actDeregister calls BeforeStop for every unit in units, all at once,
	// and waits for them (rules 2 and 6).
	actDeregister
	// actUnload unloads a unit from the runner (rules 3 and 6).
	actUnload
	// actLoad hands file to the runner and records the unit as loaded
	// under hash (rules 5, 6 and 7).
	actLoad
	// actMissing reports that a unit's file is not in etcd: a round error,
	// no runner call (rule 5).
	actMissing
	// actStop stops a launched unit (rule 8).
	actStop
	// actStart starts a unit (rule 9).
	actStart
)

func (k actionKind) String() string {
	switch k {
	case actMarkStopped:
		return "mark-stopped"
	case actDeregister:
		return "deregister"
	case actUnload:
		return "unload"
	case actLoad:
		return "load"
	case actMissing:
		return "missing"
	case actStop:
		return "stop"
	case actStart:
		return "start"
	}
	return "unknown"
}

// action is one step of a plan.
type action struct {
	kind  actionKind
	unit  string   // every kind but actDeregister
	units []string // actDeregister: sorted
	// actLoad: the file handed to the runner, and the hash the agent
	// records (the schedule's, which may differ from file.Hash: rule 7).
	file runner.Unit
	hash string
	// replace marks the actUnload and actLoad of a hash change (rule 6).
	replace bool
	// rerun marks the actStop of a Job unit run again (rule 12).
	rerun bool
}

// planInput is everything plan looks at.
type planInput struct {
	// Schedule is this machine's schedule (a unit listed twice: the last
	// entry counts).
	Schedule []store.ScheduleEntry
	// Loaded is the agent's record of what the runner holds, by unit name.
	Loaded map[string]loadedUnit
	// Files holds the unit files of filesNeeded's units, as read from
	// etcd; a unit absent from it has no file (rule 5). FilesUnread says
	// the read failed (rule 4).
	Files       map[string]fleet.Unit
	FilesUnread bool
	// HaveLease says the machine holds a lease (Lease() != 0).
	HaveLease bool
	// LeaseLost says LeaseLost was called and no round has seen a lease
	// since.
	LeaseLost bool
	// Jobs are this machine's records of its Job units' runs, by unit
	// (rules 11 and 12); JobsUnread says reading them failed.
	Jobs       map[string]store.JobRecord
	JobsUnread bool
}

// want indexes the schedule by unit name.
func (in planInput) want() map[string]store.ScheduleEntry {
	want := make(map[string]store.ScheduleEntry, len(in.Schedule))
	for _, e := range in.Schedule {
		want[e.Unit] = e
	}
	return want
}

// filesNeeded returns, sorted, the units whose files plan needs: those
// scheduled here and not inactive that are not loaded, or loaded with a
// different hash.
func filesNeeded(in planInput) []string {
	want := in.want()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		e := want[name]
		if e.DesiredState == fleet.JobStateInactive {
			continue
		}
		if cur, ok := in.Loaded[name]; ok && cur.hash == e.Hash {
			continue
		}
		out = append(out, name)
	}
	return out
}

// plan decides one reconcile round. It is pure: the same input gives the
// same actions, and in is not modified. The actions assume each one
// succeeds; the executor skips a unit's later actions once one of them
// failed. The rules (plan_test.go has a row for each):
//
//  1. Lease loss. If LeaseLost, the launched units with StopOnDisconnect
//     are marked stopped (LeaseLost stopped them), so they start again
//     only by rule 9.
//  2. Deregister before stop. Every loaded unit this round stops or
//     unloads (not scheduled here, desired inactive, or desired loaded
//     while launched) is deregistered first, all in one action, so a round
//     pays the registry's deregistration delay once.
//  3. Unload. A loaded unit not scheduled here, or desired inactive, is
//     unloaded (this is also how copies moved elsewhere while the machine
//     had no lease go away once the schedule is read again).
//  4. No files, no more. If the unit files could not be read, the round
//     ends after rule 3.
//  5. Load. A unit scheduled here, not inactive and not loaded is loaded
//     from its file; a unit without a file gets an actMissing instead (a
//     loaded unit keeps its old version and is stopped or started by
//     rules 8 and 9).
//  6. Replace. A loaded unit whose hash differs from the schedule's is
//     deregistered, unloaded and loaded again, unless its file's hash
//     differs from the schedule's too (the schedule lags a --replace):
//     then the old version stays until the engine catches up.
//  7. Lagging file. A unit not loaded whose file's hash differs from the
//     schedule's is loaded from the file all the same, recorded under the
//     schedule's hash.
//  8. Stop. A loaded unit desired loaded and launched is stopped.
//  9. Start. A loaded unit desired launched and not launched is started,
//     only while the machine has a lease (without one, the unit may be
//     running elsewhere).
//  10. Order. Marks, the deregistration, unloads, loads (replacements in
//     place), stops, starts; by unit name within each step.
//  11. Done jobs. A Job unit ([X-Fleet] Job=true) with a succeeded record
//     on this machine for the schedule's hash is not started by rule 9,
//     whatever the agent remembers (so also after an agent or fleetd
//     restart); nor is any Job unit while its records could not be read.
//  12. Jobs run again. A launched Job unit whose run's end the agent
//     recorded, and whose record is gone (deleted: DELETE /jobs) or is for
//     another hash, is stopped (no deregistration) and started again, if
//     it is still desired launched and the machine has a lease.
func plan(in planInput) []action {
	want := in.want()
	// model is what the runner will hold after each action, assuming it
	// succeeds.
	model := maps.Clone(in.Loaded)
	if model == nil {
		model = map[string]loadedUnit{}
	}
	var acts []action

	// rule 1
	if in.LeaseLost {
		for _, name := range slices.Sorted(maps.Keys(model)) {
			l := model[name]
			if l.jobState == fleet.JobStateLaunched && StopOnDisconnect(l.options) {
				l.jobState = fleet.JobStateLoaded
				model[name] = l
				acts = append(acts, action{kind: actMarkStopped, unit: name})
			}
		}
	}

	// rule 2
	var stopping []string
	for _, name := range slices.Sorted(maps.Keys(model)) {
		e, ok := want[name]
		if !ok || e.DesiredState == fleet.JobStateInactive ||
			(e.DesiredState == fleet.JobStateLoaded && model[name].jobState == fleet.JobStateLaunched) {
			stopping = append(stopping, name)
		}
	}
	if len(stopping) > 0 {
		acts = append(acts, action{kind: actDeregister, units: stopping})
	}

	// rule 3
	for _, name := range slices.Sorted(maps.Keys(model)) {
		if e, ok := want[name]; ok && e.DesiredState != fleet.JobStateInactive {
			continue
		}
		acts = append(acts, action{kind: actUnload, unit: name})
		delete(model, name)
	}

	// rule 4
	need := filesNeeded(planInput{Schedule: in.Schedule, Loaded: model})
	if in.FilesUnread && len(need) > 0 {
		return acts
	}

	// rules 5, 6, 7
	for _, name := range need {
		e := want[name]
		_, loaded := model[name]
		u, found := in.Files[name]
		switch {
		case !found:
			acts = append(acts, action{kind: actMissing, unit: name})
			continue
		case u.Hash != e.Hash && loaded:
			continue // rule 6: the schedule lags the file; keep the old version
		}
		file := runner.Unit{Name: name, Hash: u.Hash, Options: u.Options}
		if loaded {
			acts = append(acts,
				action{kind: actDeregister, units: []string{name}},
				action{kind: actUnload, unit: name, replace: true})
		}
		acts = append(acts, action{kind: actLoad, unit: name, file: file, hash: e.Hash, replace: loaded})
		model[name] = loadedUnit{hash: e.Hash, options: u.Options, jobState: fleet.JobStateLoaded, job: IsJob(u.Options), jobChecked: true}
	}

	// rule 12
	rerun := map[string]bool{}
	for name, l := range model {
		e, ok := want[name]
		if !ok || !l.job || l.finished == "" || l.jobState != fleet.JobStateLaunched ||
			e.DesiredState != fleet.JobStateLaunched || !in.HaveLease || in.JobsUnread {
			continue
		}
		if r, ok := in.Jobs[name]; !ok || r.Hash != l.hash {
			rerun[name] = true
		}
	}

	// rules 8, 9, 11, 12
	for _, pass := range []fleet.JobState{fleet.JobStateLoaded, fleet.JobStateLaunched} {
		for _, name := range slices.Sorted(maps.Keys(model)) {
			cur := model[name]
			if pass == fleet.JobStateLoaded && rerun[name] {
				acts = append(acts, action{kind: actStop, unit: name, rerun: true})
				cur.jobState, cur.finished = fleet.JobStateLoaded, ""
				model[name] = cur
				continue
			}
			if want[name].DesiredState != pass || cur.jobState == pass {
				continue
			}
			if pass == fleet.JobStateLaunched && !in.HaveLease {
				continue
			}
			if pass == fleet.JobStateLaunched && cur.job && (in.JobsUnread || in.Jobs[name].Succeeded(want[name].Hash)) {
				continue // rule 11
			}
			kind := actStop
			if pass == fleet.JobStateLaunched {
				kind = actStart
			}
			acts = append(acts, action{kind: kind, unit: name})
			cur.jobState = pass
			model[name] = cur
		}
	}
	return acts
}

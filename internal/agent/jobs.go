package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// This file is the agent's part of Job units ([X-Fleet] Job=true): it
// records how a launched job's run ended (jobs/<unit>/<machine>, no lease)
// and reads this machine's records for plan's rules 11 and 12.

// IsJob reports whether a unit's options set [X-Fleet] Job= to true.
func IsJob(opts []fleet.UnitOption) bool {
	req, _, err := unitfile.Requirements("", opts)
	return err == nil && req.Job
}

// jobOutcome judges the runner's state of a launched Job unit: done is
// false while its run is not over (or the state predates the agent's
// start: its Since is before started), else result is store.JobSucceeded
// or store.JobFailed. A oneshot succeeded when its main process exited 0
// and it is inactive/dead (active/exited with RemainAfterExit=yes); it
// failed when it ended failed, after the runner's own restarts
// (Restart=, StartLimit*: between tries it is activating/auto-restart).
// Pure.
func jobOutcome(st runner.State, started time.Time) (result string, done bool) {
	if st.Since.Before(started) {
		return "", false
	}
	switch {
	case st.ActiveState == "failed":
		return store.JobFailed, true
	case st.Result != "success":
		return "", false
	case st.ActiveState == "inactive" && st.SubState == "dead",
		st.ActiveState == "active" && st.SubState == "exited":
		return store.JobSucceeded, true
	}
	return "", false
}

// jobRecords returns the records the agent should write now: for each
// launched Job unit whose run ended since the agent started it (and whose
// end it did not record yet), how it ended. Pure.
func jobRecords(machine string, loaded map[string]loadedUnit, states map[string]runner.State, now time.Time) []store.JobRecord {
	var out []store.JobRecord
	for _, name := range slices.Sorted(maps.Keys(loaded)) {
		l := loaded[name]
		if !l.job || l.jobState != fleet.JobStateLaunched || l.finished != "" {
			continue
		}
		st, ok := states[name]
		if !ok {
			continue
		}
		res, done := jobOutcome(st, l.startedAt)
		if !done {
			continue
		}
		fin := st.Since
		if fin.IsZero() {
			fin = now
		}
		out = append(out, store.JobRecord{Unit: name, Machine: machine, Result: res, UnitResult: st.Result, Exit: st.Exit, Hash: l.hash, Finished: fin.UTC()})
	}
	return out
}

// recordJobs writes the records of the Job units whose run ended, and
// marks them recorded (so each run is written once).
func (a *Agent) recordJobs(ctx context.Context, states map[string]runner.State) error {
	a.mu.Lock()
	recs := jobRecords(a.cfg.MachineID, a.loaded, states, time.Now())
	a.mu.Unlock()
	for _, r := range recs {
		if err := a.cfg.Store.PutJob(ctx, r); err != nil {
			return fmt.Errorf("agent: record job: %w", err)
		}
		a.log.Info("job finished", "unit", r.Unit, "result", r.Result, "unit_result", r.UnitResult)
		a.mu.Lock()
		if l, ok := a.loaded[r.Unit]; ok && l.hash == r.Hash && l.jobState == fleet.JobStateLaunched {
			l.finished = r.Result
			a.loaded[r.Unit] = l
		}
		a.mu.Unlock()
	}
	return nil
}

// jobInputs fills in.Jobs with this machine's records of the Job units the
// round may start or run again: those loaded, and those whose files it
// read. A failed read sets in.JobsUnread (rule 11: no Job unit starts).
func (a *Agent) jobInputs(ctx context.Context, in *planInput) error {
	var names []string
	for name, l := range in.Loaded {
		if l.job {
			names = append(names, name)
		}
	}
	for name, u := range in.Files {
		if _, ok := in.Loaded[name]; !ok && IsJob(u.Options) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	recs, err := a.cfg.Store.MachineJobs(ctx, a.cfg.MachineID, names)
	if err != nil {
		in.JobsUnread = true
		return fmt.Errorf("agent: read job records: %w", err)
	}
	in.Jobs = recs
	return nil
}

// adoptedJobs learns, from their files, which adopted units (loaded by an
// earlier fleetd: options unknown) are Job units, so that the end of their
// run is recorded too. Only the job flag is taken from the file (an
// adopted unit's options stay unknown: rule 6 of the contract).
func (a *Agent) adoptedJobs(ctx context.Context, entries []store.ScheduleEntry) error {
	a.mu.Lock()
	var names []string
	for _, e := range entries {
		if l, ok := a.loaded[e.Unit]; ok && l.options == nil && !l.jobChecked && l.hash == e.Hash {
			names = append(names, e.Unit)
		}
	}
	a.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	files, err := a.cfg.Store.UnitsByName(ctx, names)
	if err != nil {
		return fmt.Errorf("agent: read adopted units: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range names {
		l, ok := a.loaded[name]
		u, found := files[name]
		if !ok || l.options != nil || !found || u.Hash != l.hash {
			continue
		}
		l.job, l.jobChecked = IsJob(u.Options), true
		a.loaded[name] = l
	}
	return nil
}

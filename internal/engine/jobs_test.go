package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
	"github.com/fleetd/fleet/internal/store"
)

// jobRound runs the pure part of a reconcile round over snap and returns
// the machines each unit is assigned to and the changes written.
func jobRound(t *testing.T, snap store.Snapshot) (map[string][]string, store.Changes) {
	t.Helper()
	e := New(Config{})
	in, byName := e.input(snap)
	res := schedule.Schedule(in)
	skipSucceededJobs(&res, in, byName, snap.Jobs)
	return res.Assign, Changes(snap, byName, res)
}

func TestJobs(t *testing.T) {
	const jobBody = "[Service]\nType=oneshot\nExecStart=/bin/true\n[X-Fleet]\nJob=true\n"
	job := unit(t, "j.service", jobBody, fleet.JobStateLaunched)
	global := unit(t, "g.service", jobBody+"Global=true\n", fleet.JobStateLaunched)
	machines := []fleet.Machine{{ID: "m1"}, {ID: "m2"}, {ID: "m3"}}
	rec := func(u fleet.Unit, m, result string) store.JobRecord {
		return store.JobRecord{Unit: u.Name, Machine: m, Result: result, Hash: u.Hash}
	}
	t.Run("a job without a record is placed like any unit", func(t *testing.T) {
		assign, _ := jobRound(t, store.Snapshot{Units: []fleet.Unit{job}, Machines: machines})
		if len(assign[job.Name]) != 1 {
			t.Fatalf("assign = %v", assign)
		}
	})
	t.Run("a succeeded job leaves its machine, without a reason", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{job}, Machines: machines,
			Schedule: []store.ScheduleEntry{{Unit: job.Name, Machine: "m2", Hash: job.Hash, DesiredState: fleet.JobStateLaunched}},
			Jobs:     map[string][]store.JobRecord{job.Name: {rec(job, "m2", store.JobSucceeded)}},
		}
		assign, ch := jobRound(t, snap)
		if len(assign[job.Name]) != 0 || len(ch.Delete) != 1 || ch.Delete[0].Machine != "m2" || len(ch.PutReasons) != 0 || len(ch.Put) != 0 {
			t.Fatalf("assign = %v, changes = %+v", assign, ch)
		}
	})
	t.Run("a succeeded job is not placed again when its machine is gone", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{job}, Machines: machines[:2],
			Jobs: map[string][]store.JobRecord{job.Name: {rec(job, "m3", store.JobSucceeded)}},
		}
		if assign, ch := jobRound(t, snap); len(assign[job.Name]) != 0 || !ch.Empty() {
			t.Fatalf("assign = %v, changes = %+v", assign, ch)
		}
	})
	t.Run("a success of an older file does not count", func(t *testing.T) {
		old := rec(job, "m1", store.JobSucceeded)
		old.Hash = "older"
		snap := store.Snapshot{Units: []fleet.Unit{job}, Machines: machines, Jobs: map[string][]store.JobRecord{job.Name: {old}}}
		if assign, _ := jobRound(t, snap); len(assign[job.Name]) != 1 {
			t.Fatalf("assign = %v", assign)
		}
	})
	t.Run("a failed job keeps its placement", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{job}, Machines: machines,
			Schedule: []store.ScheduleEntry{{Unit: job.Name, Machine: "m2", Hash: job.Hash, DesiredState: fleet.JobStateLaunched}},
			Jobs:     map[string][]store.JobRecord{job.Name: {rec(job, "m2", store.JobFailed)}},
		}
		if assign, ch := jobRound(t, snap); !slices.Equal(assign[job.Name], []string{"m2"}) || !ch.Empty() {
			t.Fatalf("assign = %v, changes = %+v", assign, ch)
		}
	})
	t.Run("a failed job whose machine died is placed elsewhere", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{job}, Machines: machines[:2],
			Schedule: []store.ScheduleEntry{{Unit: job.Name, Machine: "m3", Hash: job.Hash, DesiredState: fleet.JobStateLaunched}},
			Jobs:     map[string][]store.JobRecord{job.Name: {rec(job, "m3", store.JobFailed)}},
		}
		assign, _ := jobRound(t, snap)
		if len(assign[job.Name]) != 1 || assign[job.Name][0] == "m3" {
			t.Fatalf("assign = %v", assign)
		}
	})
	t.Run("a global job skips the machines where it succeeded", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{global}, Machines: machines,
			Jobs: map[string][]store.JobRecord{global.Name: {rec(global, "m1", store.JobSucceeded), rec(global, "m2", store.JobFailed)}},
		}
		if assign, _ := jobRound(t, snap); !slices.Equal(assign[global.Name], []string{"m2", "m3"}) {
			t.Fatalf("assign = %v", assign)
		}
	})
	t.Run("a global job that succeeded everywhere is placed nowhere, without a reason", func(t *testing.T) {
		snap := store.Snapshot{
			Units: []fleet.Unit{global}, Machines: machines,
			Jobs: map[string][]store.JobRecord{global.Name: {rec(global, "m1", store.JobSucceeded), rec(global, "m2", store.JobSucceeded), rec(global, "m3", store.JobSucceeded)}},
		}
		if assign, ch := jobRound(t, snap); len(assign[global.Name]) != 0 || len(ch.PutReasons) != 0 {
			t.Fatalf("assign = %v, changes = %+v", assign, ch)
		}
	})
	t.Run("a plain unit with a record is placed as always", func(t *testing.T) {
		plain := unit(t, "p.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n", fleet.JobStateLaunched)
		snap := store.Snapshot{Units: []fleet.Unit{plain}, Machines: machines, Jobs: map[string][]store.JobRecord{plain.Name: {rec(plain, "m1", store.JobSucceeded)}}}
		if assign, _ := jobRound(t, snap); len(assign[plain.Name]) != 1 {
			t.Fatalf("assign = %v", assign)
		}
	})
}

// Property: whatever the records, machines and current placements, a
// non-global job that succeeded with its current file is never placed, a
// global job is never placed on a machine where it succeeded, and a job
// without such a success is placed as any unit would be.
func TestJobsNeverPlacedAfterSuccess(t *testing.T) {
	const body = "[Service]\nType=oneshot\nExecStart=/bin/true\n[X-Fleet]\nJob=true\n"
	r := rand.New(rand.NewPCG(12, 3))
	for iter := range 500 {
		var machines []fleet.Machine
		for i := range 1 + r.IntN(4) {
			machines = append(machines, fleet.Machine{ID: fmt.Sprintf("m%d", i)})
		}
		all := []string{"m0", "m1", "m2", "m3", "m4"} // m4 is never alive
		snap := store.Snapshot{Machines: machines, Jobs: map[string][]store.JobRecord{}}
		for j := range 1 + r.IntN(4) {
			name := fmt.Sprintf("j%d.service", j)
			text := body
			if r.IntN(3) == 0 {
				text += "Global=true\n"
			}
			u := unit(t, name, text, fleet.JobStateLaunched)
			snap.Units = append(snap.Units, u)
			for range r.IntN(3) {
				rec := store.JobRecord{Unit: name, Machine: all[r.IntN(len(all))], Result: store.JobFailed, Hash: u.Hash}
				if r.IntN(2) == 0 {
					rec.Result = store.JobSucceeded
				}
				if r.IntN(4) == 0 {
					rec.Hash = "an older file"
				}
				snap.Jobs[name] = append(snap.Jobs[name], rec)
			}
			if r.IntN(2) == 0 {
				snap.Schedule = append(snap.Schedule, store.ScheduleEntry{Unit: name, Machine: all[r.IntN(len(all))], Hash: u.Hash, DesiredState: fleet.JobStateLaunched})
			}
		}
		assign, _ := jobRound(t, snap)
		for _, u := range snap.Units {
			global := strings.Contains(string(unitBody(u)), "Global=true")
			succeededOn := map[string]bool{}
			for _, rec := range snap.Jobs[u.Name] {
				if rec.Succeeded(u.Hash) {
					succeededOn[rec.Machine] = true
				}
			}
			got := assign[u.Name]
			switch {
			case !global && len(succeededOn) > 0 && len(got) > 0:
				t.Fatalf("iteration %d: %s succeeded on %v and is placed again on %v", iter, u.Name, succeededOn, got)
			case !global && len(succeededOn) == 0 && len(got) != 1:
				t.Fatalf("iteration %d: %s never succeeded and is placed on %v", iter, u.Name, got)
			case global:
				for _, m := range got {
					if succeededOn[m] {
						t.Fatalf("iteration %d: global %s succeeded on %s and is placed there again", iter, u.Name, m)
					}
				}
				for _, m := range machines {
					if !succeededOn[m.ID] && !slices.Contains(got, m.ID) {
						t.Fatalf("iteration %d: global %s not placed on %s where it never succeeded", iter, u.Name, m.ID)
					}
				}
			}
		}
	}
}

// unitBody is a unit's options as text (for the test's own checks).
func unitBody(u fleet.Unit) string {
	var b strings.Builder
	for _, o := range u.Options {
		fmt.Fprintf(&b, "%s=%s\n", o.Name, o.Value)
	}
	return b.String()
}

package agent

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
)

const (
	launched = fleet.JobStateLaunched
	loaded   = fleet.JobStateLoaded
	inactive = fleet.JobStateInactive
)

var fencedOpts = []fleet.UnitOption{
	{Section: "Service", Name: "ExecStart", Value: "/x"},
	{Section: "X-Fleet", Name: "StopOnDisconnect", Value: "true"},
}

func sched(unit, hash string, js fleet.JobState) store.ScheduleEntry {
	return store.ScheduleEntry{Unit: unit, Machine: "m1", Hash: hash, DesiredState: js}
}

func rec(hash string, js fleet.JobState) loadedUnit { return loadedUnit{hash: hash, jobState: js} }

func fencedRec(hash string, js fleet.JobState) loadedUnit {
	return loadedUnit{hash: hash, options: fencedOpts, jobState: js}
}

func file(name, hash string) fleet.Unit { return fleet.Unit{Name: name, Hash: hash} }

func files(us ...fleet.Unit) map[string]fleet.Unit {
	m := map[string]fleet.Unit{}
	for _, u := range us {
		m[u.Name] = u
	}
	return m
}

// String renders an action for the tables: "load a.service h2", a lagging
// file as "load a.service h2 file=h3", a hash change's unload and load with
// "(replace)".
func (a action) String() string {
	var b strings.Builder
	b.WriteString(a.kind.String())
	if a.kind == actDeregister {
		b.WriteString(" " + strings.Join(a.units, " "))
	} else {
		b.WriteString(" " + a.unit)
	}
	if a.kind == actLoad {
		b.WriteString(" " + a.hash)
		if a.file.Hash != a.hash {
			b.WriteString(" file=" + a.file.Hash)
		}
	}
	if a.replace {
		b.WriteString(" (replace)")
	}
	return b.String()
}

func render(acts []action) []string {
	out := make([]string, 0, len(acts))
	for _, a := range acts {
		out = append(out, a.String())
	}
	return out
}

// One row per rule of plan (the numbers are plan's), and per branch of the
// reconcile round it replaced.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   planInput
		need []string // filesNeeded
		want []string
	}{
		{
			name: "nothing scheduled, nothing loaded",
			in:   planInput{HaveLease: true},
		},
		{
			name: "5,9: new unit desired launched: load then start",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Files:    files(file("a", "h1"))},
			need: []string{"a"},
			want: []string{"load a h1", "start a"},
		},
		{
			name: "5: new unit desired loaded: load only",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", loaded)},
				Files:    files(file("a", "h1"))},
			need: []string{"a"},
			want: []string{"load a h1"},
		},
		{
			name: "3: new unit desired inactive: nothing, not even its file",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", inactive)}},
		},
		{
			name: "9: no lease: loaded, not started",
			in: planInput{
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Files:    files(file("a", "h1"))},
			need: []string{"a"},
			want: []string{"load a h1"},
		},
		{
			name: "steady: loaded, same hash, launched as desired: nothing",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
		},
		{
			name: "steady without a lease: a launched unit keeps running",
			in: planInput{
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
		},
		{
			name: "2,8: desired loaded while launched: deregister, stop",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
			want: []string{"deregister a", "stop a"},
		},
		{
			name: "8: desired loaded, already loaded: nothing",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", loaded)}},
		},
		{
			name: "9: desired launched while loaded: start",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", loaded)}},
			want: []string{"start a"},
		},
		{
			name: "2,3: no longer scheduled here: deregister, unload",
			in: planInput{HaveLease: true,
				Loaded: map[string]loadedUnit{"a": rec("h1", launched)}},
			want: []string{"deregister a", "unload a"},
		},
		{
			name: "2,3: desired inactive: deregister, unload",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", inactive)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
			want: []string{"deregister a", "unload a"},
		},
		{
			name: "2,3: a loaded (not launched) unit is deregistered too before its unload",
			in: planInput{HaveLease: true,
				Loaded: map[string]loadedUnit{"a": rec("h1", loaded)}},
			want: []string{"deregister a", "unload a"},
		},
		{
			name: "3: unscheduled units are unloaded without a lease too",
			in:   planInput{Loaded: map[string]loadedUnit{"a": rec("h1", launched)}},
			want: []string{"deregister a", "unload a"},
		},
		{
			name: "6,9: hash changed, desired launched: deregister, unload, load, start",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)},
				Files:    files(file("a", "h2"))},
			need: []string{"a"},
			want: []string{"deregister a", "unload a (replace)", "load a h2 (replace)", "start a"},
		},
		{
			name: "2,6: hash changed, desired loaded while launched: deregistered with the batch and again before the unload; no stop",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)},
				Files:    files(file("a", "h2"))},
			need: []string{"a"},
			want: []string{"deregister a", "deregister a", "unload a (replace)", "load a h2 (replace)"},
		},
		{
			name: "6,9: hash changed without a lease: replaced, not started",
			in: planInput{
				Schedule: []store.ScheduleEntry{sched("a", "h2", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)},
				Files:    files(file("a", "h2"))},
			need: []string{"a"},
			want: []string{"deregister a", "unload a (replace)", "load a h2 (replace)"},
		},
		{
			name: "6: hash changed but the file's hash is another one (schedule lags): keep the old one",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)},
				Files:    files(file("a", "h3"))},
			need: []string{"a"},
		},
		{
			name: "6,9: schedule lags, the old version stopped and desired launched: started",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", loaded)},
				Files:    files(file("a", "h3"))},
			need: []string{"a"},
			want: []string{"start a"},
		},
		{
			name: "7: new unit whose file lags the schedule: loaded from the file, recorded under the schedule's hash",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", launched)},
				Files:    files(file("a", "h3"))},
			need: []string{"a"},
			want: []string{"load a h2 file=h3", "start a"},
		},
		{
			name: "5: new unit without a file: missing, nothing started",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Files:    files()},
			need: []string{"a"},
			want: []string{"missing a"},
		},
		{
			name: "5,8: hash changed, no file: missing; the old version is still stopped as desired",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h2", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)},
				Files:    files()},
			need: []string{"a"},
			want: []string{"deregister a", "missing a", "stop a"},
		},
		{
			name: "4: files unreadable: only the deregistration and unloads",
			in: planInput{HaveLease: true, FilesUnread: true,
				Schedule: []store.ScheduleEntry{sched("b", "h1", launched), sched("c", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched), "c": rec("h1", launched)}},
			need: []string{"b"},
			want: []string{"deregister a c", "unload a"},
		},
		{
			name: "4: files unreadable but none needed: the round goes on",
			in: planInput{HaveLease: true, FilesUnread: true,
				Schedule: []store.ScheduleEntry{sched("c", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"c": rec("h1", launched)}},
			want: []string{"deregister c", "stop c"},
		},
		{
			name: "1,9: lease lost, back again: the fenced unit is marked stopped and started again",
			in: planInput{HaveLease: true, LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": fencedRec("h1", launched)}},
			want: []string{"mark-stopped a", "start a"},
		},
		{
			name: "1,9: lease lost, none yet: the fenced unit is marked stopped and not started",
			in: planInput{LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": fencedRec("h1", launched)}},
			want: []string{"mark-stopped a"},
		},
		{
			name: "1: lease lost: a unit without StopOnDisconnect keeps running",
			in: planInput{LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
		},
		{
			name: "1: lease lost: a fenced unit already stopped is not marked",
			in: planInput{LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"a": fencedRec("h1", loaded)}},
		},
		{
			name: "1: lease lost: adopted units (options unknown) count as not fenced",
			in: planInput{HaveLease: true, LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
		},
		{
			name: "1,2,3: lease back, the unit moved elsewhere meanwhile: stopped and unloaded before anything else",
			in: planInput{HaveLease: true, LeaseLost: true,
				Schedule: []store.ScheduleEntry{sched("b", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched), "f": fencedRec("h1", launched)},
				Files:    files(file("b", "h1"))},
			need: []string{"b"},
			want: []string{"mark-stopped f", "deregister a f", "unload a", "unload f", "load b h1", "start b"},
		},
		{
			name: "10: order: marks, one deregistration, unloads, loads and replacements, stops, starts; by name",
			in: planInput{HaveLease: true, LeaseLost: true,
				Schedule: []store.ScheduleEntry{
					sched("b", "h1", launched), sched("d", "h2", launched), sched("e", "h1", loaded),
					sched("g", "h1", launched), sched("h", "h1", launched), sched("z", "h1", inactive),
				},
				Loaded: map[string]loadedUnit{
					"a": rec("h1", launched), "d": rec("h1", launched), "e": rec("h1", launched),
					"h": fencedRec("h1", launched), "z": rec("h1", loaded),
				},
				Files: files(file("b", "h1"), file("d", "h2"), file("g", "h1"))},
			need: []string{"b", "d", "g"},
			want: []string{
				"mark-stopped h",
				"deregister a e z",
				"unload a", "unload z",
				"load b h1",
				"deregister d", "unload d (replace)", "load d h2 (replace)",
				"load g h1",
				"stop e",
				"start b", "start d", "start g", "start h",
			},
		},
		{
			name: "11: a Job with a succeeded record for its hash is loaded, not started",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Files:    files(jobFile("j", "h1")),
				Jobs:     map[string]store.JobRecord{"j": jobRec("j", "h1", store.JobSucceeded)}},
			need: []string{"j"},
			want: []string{"load j h1"},
		},
		{
			name: "11: after a restart (adopted as loaded), a succeeded Job is not started again",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h1", loaded, "")},
				Jobs:     map[string]store.JobRecord{"j": jobRec("j", "h1", store.JobSucceeded)}},
		},
		{
			name: "11: a success of another hash, or a failure, does not count: started",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h2", launched), sched("k", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h2", loaded, ""), "k": jobLoaded("h1", loaded, "")},
				Jobs:     map[string]store.JobRecord{"j": jobRec("j", "h1", store.JobSucceeded), "k": jobRec("k", "h1", store.JobFailed)}},
			want: []string{"start j", "start k"},
		},
		{
			name: "11: Job records unread: no Job starts, other units do",
			in: planInput{HaveLease: true, JobsUnread: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched), sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", loaded), "j": jobLoaded("h1", loaded, "")}},
			want: []string{"start a"},
		},
		{
			name: "12: a recorded failed Job whose record was deleted: stopped and started again",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h1", launched, store.JobFailed)}},
			want: []string{"stop j", "start j"},
		},
		{
			name: "12: a recorded Job whose record is still there: nothing",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h1", launched, store.JobFailed)},
				Jobs:     map[string]store.JobRecord{"j": jobRec("j", "h1", store.JobFailed)}},
		},
		{
			name: "12: a Job still running (not recorded) without a record: nothing",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h1", launched, "")}},
		},
		{
			name: "12: no rerun without a lease",
			in: planInput{
				Schedule: []store.ScheduleEntry{sched("j", "h1", launched)},
				Loaded:   map[string]loadedUnit{"j": jobLoaded("h1", launched, store.JobFailed)}},
		},
		{
			name: "a unit listed twice: the last entry counts",
			in: planInput{HaveLease: true,
				Schedule: []store.ScheduleEntry{sched("a", "h1", launched), sched("a", "h1", loaded)},
				Loaded:   map[string]loadedUnit{"a": rec("h1", launched)}},
			want: []string{"deregister a", "stop a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := filesNeeded(tc.in); !slices.Equal(got, tc.need) {
				t.Errorf("filesNeeded = %q, want %q", got, tc.need)
			}
			if got := render(plan(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPlanLoadCarriesTheFile(t *testing.T) {
	opts := []fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}
	acts := plan(planInput{HaveLease: true,
		Schedule: []store.ScheduleEntry{sched("a", "h1", launched)},
		Files:    map[string]fleet.Unit{"a": {Name: "a", Hash: "h1", Options: opts}}})
	want := runner.Unit{Name: "a", Hash: "h1", Options: opts}
	if len(acts) == 0 || acts[0].kind != actLoad || !reflect.DeepEqual(acts[0].file, want) {
		t.Fatalf("plan = %+v, want a load of %+v first", acts, want)
	}
}

func TestAdopt(t *testing.T) {
	states := map[string]runner.State{
		"a": {ActiveState: "active", Hash: "h1"},
		"b": {ActiveState: "activating", Hash: "h2"},
		"c": {ActiveState: "reloading", Hash: "h3"},
		"d": {ActiveState: "inactive", Hash: "h4"},
		"e": {ActiveState: "failed", Hash: "h5"},
		"k": {ActiveState: "inactive", Hash: "other"},
	}
	known := map[string]loadedUnit{"k": fencedRec("h9", launched)}
	got := adopt(states, known)
	want := map[string]loadedUnit{
		"a": rec("h1", launched), "b": rec("h2", launched), "c": rec("h3", launched),
		"d": rec("h4", loaded), "e": rec("h5", loaded),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("adopt = %+v, want %+v", got, want)
	}
}

// modelRunner is what a runner holds in the property test.
type modelUnit struct {
	fileHash string
	running  bool
}

// Applying a plan to a model of the runner, every action succeeding,
// reaches the schedule: planning again has nothing left to do; the agent's
// record matches the runner; every unit stopped or unloaded was
// deregistered first; nothing starts without a lease. plan is pure: it
// leaves its input alone and gives the same plan twice.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e"}
	hashes := []string{"h1", "h2", "h3"}
	states := []fleet.JobState{launched, loaded, inactive}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for i := range 5000 {
		in := planInput{HaveLease: rng.IntN(3) > 0, LeaseLost: rng.IntN(3) == 0, Loaded: map[string]loadedUnit{}, Files: map[string]fleet.Unit{}}
		runnerState := map[string]modelUnit{}
		for _, n := range names {
			if rng.IntN(2) == 0 {
				in.Schedule = append(in.Schedule, sched(n, pick(hashes), states[rng.IntN(len(states))]))
			}
			if rng.IntN(2) == 0 {
				l := loadedUnit{hash: pick(hashes), jobState: loaded}
				if rng.IntN(2) == 0 {
					l.jobState = launched
				}
				if rng.IntN(3) == 0 {
					l.options = fencedOpts
				}
				in.Loaded[n] = l
				// LeaseLost stopped the fenced units already.
				running := l.jobState == launched && !(in.LeaseLost && StopOnDisconnect(l.options))
				runnerState[n] = modelUnit{fileHash: l.hash, running: running}
			}
			switch rng.IntN(4) {
			case 0: // missing
			case 1: // lagging
				in.Files[n] = file(n, pick(hashes))
			default:
				in.Files[n] = file(n, "")
			}
		}
		// Most files match the schedule.
		for _, e := range in.Schedule {
			if u, ok := in.Files[e.Unit]; ok && u.Hash == "" {
				in.Files[e.Unit] = file(e.Unit, e.Hash)
			}
		}
		desc := fmt.Sprintf("case %d: %+v", i, in)

		before := clonePlanInput(in)
		acts := plan(in)
		if !reflect.DeepEqual(in, before) {
			t.Fatalf("%s: plan modified its input", desc)
		}
		if again := plan(in); !reflect.DeepEqual(again, acts) {
			t.Fatalf("%s: plan is not deterministic:\n%q\n%q", desc, render(acts), render(again))
		}

		// Apply to the runner model and to the agent's record.
		record := maps.Clone(in.Loaded)
		deregistered := map[string]bool{}
		for _, a := range acts {
			switch a.kind {
			case actMarkStopped:
				l := record[a.unit]
				if runnerState[a.unit].running {
					t.Fatalf("%s: marked stopped a unit LeaseLost did not stop: %q", desc, render(acts))
				}
				l.jobState = loaded
				record[a.unit] = l
			case actDeregister:
				for _, u := range a.units {
					deregistered[u] = true
				}
			case actUnload:
				if !deregistered[a.unit] {
					t.Fatalf("%s: unload of %s before its deregistration: %q", desc, a.unit, render(acts))
				}
				delete(runnerState, a.unit)
				delete(record, a.unit)
			case actLoad:
				if _, ok := runnerState[a.unit]; ok {
					t.Fatalf("%s: load of %s over a loaded unit: %q", desc, a.unit, render(acts))
				}
				runnerState[a.unit] = modelUnit{fileHash: a.file.Hash}
				record[a.unit] = loadedUnit{hash: a.hash, options: a.file.Options, jobState: loaded}
			case actStop:
				if !deregistered[a.unit] {
					t.Fatalf("%s: stop of %s before its deregistration: %q", desc, a.unit, render(acts))
				}
				runnerState[a.unit] = modelUnit{fileHash: runnerState[a.unit].fileHash}
				l := record[a.unit]
				l.jobState = loaded
				record[a.unit] = l
			case actStart:
				if !in.HaveLease {
					t.Fatalf("%s: start without a lease: %q", desc, render(acts))
				}
				u := runnerState[a.unit]
				u.running = true
				runnerState[a.unit] = u
				l := record[a.unit]
				l.jobState = launched
				record[a.unit] = l
			}
		}

		// The record tells the truth about the runner.
		if len(record) != len(runnerState) {
			t.Fatalf("%s: record %v, runner %v", desc, record, runnerState)
		}
		for n, l := range record {
			if (l.jobState == launched) != runnerState[n].running {
				t.Fatalf("%s: %s recorded %s, runner running=%v; plan %q", desc, n, l.jobState, runnerState[n].running, render(acts))
			}
		}
		// The schedule is reached, as far as files and the lease allow.
		want := in.want()
		for n, l := range record {
			e, ok := want[n]
			if !ok || e.DesiredState == inactive {
				t.Fatalf("%s: %s still loaded", desc, n)
			}
			if e.DesiredState == loaded && l.jobState != loaded {
				t.Fatalf("%s: %s desired loaded is %s", desc, n, l.jobState)
			}
			if e.DesiredState == launched && in.HaveLease && l.jobState != launched {
				t.Fatalf("%s: %s desired launched is %s", desc, n, l.jobState)
			}
		}
		// Planning again (the lease-loss seen) has only the missing files
		// to report.
		next := planInput{Schedule: in.Schedule, Loaded: record, Files: in.Files, HaveLease: in.HaveLease}
		for _, a := range plan(next) {
			if a.kind != actMissing {
				t.Fatalf("%s: not a fixpoint: first plan %q, second %q", desc, render(acts), render(plan(next)))
			}
		}
	}
}

func clonePlanInput(in planInput) planInput {
	out := in
	out.Schedule = slices.Clone(in.Schedule)
	out.Loaded = maps.Clone(in.Loaded)
	out.Files = maps.Clone(in.Files)
	return out
}

var jobOpts = []fleet.UnitOption{
	{Section: "Service", Name: "Type", Value: "oneshot"},
	{Section: "Service", Name: "ExecStart", Value: "/x"},
	{Section: "X-Fleet", Name: "Job", Value: "true"},
}

func jobFile(name, hash string) fleet.Unit {
	return fleet.Unit{Name: name, Hash: hash, Options: jobOpts}
}

func jobLoaded(hash string, js fleet.JobState, finished string) loadedUnit {
	return loadedUnit{hash: hash, options: jobOpts, jobState: js, job: true, jobChecked: true, finished: finished}
}

func jobRec(unit, hash, result string) store.JobRecord {
	return store.JobRecord{Unit: unit, Machine: "m1", Hash: hash, Result: result}
}

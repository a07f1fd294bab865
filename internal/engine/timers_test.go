package engine

import (
	"slices"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
	"github.com/fleetd/fleet/internal/store"
)

func TestTimerPlacements(t *testing.T) {
	const timerBody = "[Timer]\nOnCalendar=*:*:0/2\n"
	const svcBody = "[Service]\nType=oneshot\nExecStart=/bin/true\n"
	type want struct {
		desired   fleet.JobState
		machineOf []string
	}
	for _, tc := range []struct {
		name  string
		units []fleet.Unit
		want  map[string]want // by unit: its desired state and MachineOf after
	}{
		{
			name: "a launched timer pulls its inactive service to loaded, on its machine",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateLaunched),
				unit(t, "t.service", svcBody, fleet.JobStateInactive),
			},
			want: map[string]want{"t.service": {fleet.JobStateLoaded, []string{"t.timer"}}, "t.timer": {fleet.JobStateLaunched, nil}},
		},
		{
			name: "a launched service stays launched",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateLaunched),
				unit(t, "t.service", svcBody, fleet.JobStateLaunched),
			},
			want: map[string]want{"t.service": {fleet.JobStateLaunched, []string{"t.timer"}}},
		},
		{
			name: "Unit= names the service",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody+"Unit=work.service\n", fleet.JobStateLaunched),
				unit(t, "t.service", svcBody, fleet.JobStateInactive),
				unit(t, "work.service", svcBody, fleet.JobStateInactive),
			},
			want: map[string]want{"work.service": {fleet.JobStateLoaded, []string{"t.timer"}}, "t.service": {fleet.JobStateInactive, nil}},
		},
		{
			name: "a timer only loaded does nothing",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateLoaded),
				unit(t, "t.service", svcBody, fleet.JobStateInactive),
			},
			want: map[string]want{"t.service": {fleet.JobStateInactive, nil}},
		},
		{
			name: "an inactive timer does nothing",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateInactive),
				unit(t, "t.service", svcBody, fleet.JobStateInactive),
			},
			want: map[string]want{"t.service": {fleet.JobStateInactive, nil}},
		},
		{
			name:  "a missing service changes nothing",
			units: []fleet.Unit{unit(t, "t.timer", timerBody, fleet.JobStateLaunched)},
			want:  map[string]want{"t.timer": {fleet.JobStateLaunched, nil}},
		},
		{
			name: "the service's own MachineOf is kept, the timer added once",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateLaunched),
				unit(t, "t.service", svcBody+"[X-Fleet]\nMachineOf=db.service\nMachineOf=t.timer\n", fleet.JobStateLoaded),
				unit(t, "db.service", svcBody, fleet.JobStateLaunched),
			},
			want: map[string]want{"t.service": {fleet.JobStateLoaded, []string{"db.service", "t.timer"}}},
		},
		{
			name: "a global service keeps its requirements",
			units: []fleet.Unit{
				unit(t, "t.timer", timerBody, fleet.JobStateLaunched),
				unit(t, "t.service", svcBody+"[X-Fleet]\nGlobal=true\n", fleet.JobStateInactive),
			},
			want: map[string]want{"t.service": {fleet.JobStateLoaded, nil}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Config{})
			snap := store.Snapshot{Units: tc.units, Machines: []fleet.Machine{{ID: "m1"}, {ID: "m2"}, {ID: "m3"}}}
			in, byName := e.input(snap)
			got := map[string]schedule.Unit{}
			for _, u := range in.Units {
				got[u.Name] = u
			}
			for name, w := range tc.want {
				u := got[name]
				if u.Desired != w.desired || byName[name].DesiredState != w.desired {
					t.Errorf("%s: desired %q (byName %q), want %q", name, u.Desired, byName[name].DesiredState, w.desired)
				}
				if !slices.Equal(u.Req.MachineOf, w.machineOf) {
					t.Errorf("%s: MachineOf %q, want %q", name, u.Req.MachineOf, w.machineOf)
				}
			}
			// The requirement cache is not changed: a second round
			// gives the same input.
			in2, _ := e.input(snap)
			for _, u := range in2.Units {
				if !slices.Equal(u.Req.MachineOf, got[u.Name].Req.MachineOf) {
					t.Errorf("second round: %s MachineOf %q, first %q", u.Name, u.Req.MachineOf, got[u.Name].Req.MachineOf)
				}
			}
		})
	}
}

// The schedule puts a launched timer's service on the timer's machine,
// desired loaded, and moves it with the timer when that machine is gone.
func TestTimerServiceFollowsTimer(t *testing.T) {
	tm := unit(t, "t.timer", "[Timer]\nOnCalendar=*:*:0/2\n[X-Fleet]\nMachineMetadata=role=cron\n", fleet.JobStateLaunched)
	svc := unit(t, "t.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n", fleet.JobStateInactive)
	cron := map[string]string{"role": "cron"}
	machines := []fleet.Machine{{ID: "m1"}, {ID: "m2", Metadata: cron}, {ID: "m3", Metadata: cron}}
	round := func(snap store.Snapshot) (schedule.Result, store.Changes) {
		e := New(Config{})
		in, byName := e.input(snap)
		res := schedule.Schedule(in)
		return res, Changes(snap, byName, res)
	}
	res, ch := round(store.Snapshot{Units: []fleet.Unit{tm, svc}, Machines: machines})
	m := res.Assign["t.timer"]
	if len(m) != 1 || m[0] == "m1" || !slices.Equal(res.Assign["t.service"], m) {
		t.Fatalf("assign = %v (reasons %v)", res.Assign, res.Reasons)
	}
	var sched []store.ScheduleEntry
	for _, p := range ch.Put {
		if p.Unit == "t.service" && p.DesiredState != fleet.JobStateLoaded {
			t.Errorf("service entry %+v, want desired loaded", p)
		}
		sched = append(sched, p)
	}
	// The timer's machine dies: both move to the other cron machine.
	var rest []fleet.Machine
	for _, mm := range machines {
		if mm.ID != m[0] {
			rest = append(rest, mm)
		}
	}
	res, _ = round(store.Snapshot{Units: []fleet.Unit{tm, svc}, Machines: rest, Schedule: sched})
	m2 := res.Assign["t.timer"]
	if len(m2) != 1 || m2[0] == m[0] || m2[0] == "m1" || !slices.Equal(res.Assign["t.service"], m2) {
		t.Fatalf("after the loss of %s: assign = %v (reasons %v)", m[0], res.Assign, res.Reasons)
	}
}

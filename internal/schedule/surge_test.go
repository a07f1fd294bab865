package schedule

import (
	"maps"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestSurgeMachines(t *testing.T) {
	ms := []fleet.Machine{
		{ID: "m1", Metadata: map[string]string{"disk": "ssd"}},
		{ID: "m2", Metadata: map[string]string{"disk": "ssd"}},
		{ID: "m3"},
		{ID: "m4", Metadata: map[string]string{"draining": "true", "disk": "ssd"}},
	}
	launched := func(name string, req fleet.Requirements) Unit {
		return Unit{Name: name, Desired: fleet.JobStateLaunched, Req: req}
	}
	for _, tc := range []struct {
		name  string
		units []Unit
		cur   map[string][]string
		ask   []string
		want  map[string]string
	}{
		{"least loaded other machine",
			[]Unit{launched("a.service", fleet.Requirements{}), launched("b.service", fleet.Requirements{})},
			map[string][]string{"a.service": {"m1"}, "b.service": {"m2"}},
			[]string{"a.service"}, map[string]string{"a.service": "m3"}},
		{"metadata filter; draining machine never",
			[]Unit{launched("a.service", fleet.Requirements{Metadata: map[string][]string{"disk": {"ssd"}}})},
			map[string][]string{"a.service": {"m1"}},
			[]string{"a.service"}, map[string]string{"a.service": "m2"}},
		{"conflicts both ways: no machine left",
			[]Unit{
				launched("web@1.service", fleet.Requirements{Conflicts: []string{"web@*.service"}}),
				launched("web@2.service", fleet.Requirements{Conflicts: []string{"web@*.service"}}),
				launched("web@3.service", fleet.Requirements{Conflicts: []string{"web@*.service"}}),
			},
			map[string][]string{"web@1.service": {"m1"}, "web@2.service": {"m2"}, "web@3.service": {"m3"}},
			[]string{"web@1.service"}, map[string]string{}},
		{"one machine per copy",
			[]Unit{launched("a.service", fleet.Requirements{}), launched("b.service", fleet.Requirements{}), launched("c.service", fleet.Requirements{})},
			map[string][]string{"a.service": {"m1"}, "b.service": {"m1"}, "c.service": {"m2"}},
			[]string{"a.service", "b.service"}, map[string]string{"a.service": "m3", "b.service": "m2"}},
		{"pinned by MachineID: nowhere else",
			[]Unit{launched("a.service", fleet.Requirements{MachineID: "m1"})},
			map[string][]string{"a.service": {"m1"}},
			[]string{"a.service"}, map[string]string{}},
		{"global, unknown and inactive units get nothing",
			[]Unit{launched("g.service", fleet.Requirements{Global: true}), {Name: "i.service", Desired: fleet.JobStateInactive}},
			nil,
			[]string{"g.service", "i.service", "nope.service"}, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SurgeMachines(Snapshot{Machines: ms, Units: tc.units, Current: tc.cur}, tc.ask)
			if !maps.Equal(got, tc.want) {
				t.Errorf("SurgeMachines = %v, want %v", got, tc.want)
			}
		})
	}
}

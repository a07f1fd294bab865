package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/store/keys"
)

const pfx = "/_coreos.com/fleet/"

func kv(key string, rev int64, v any) *etcdkv.KV {
	var b []byte
	switch x := v.(type) {
	case nil:
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(x)
	}
	return &etcdkv.KV{Key: pfx + key, Value: b, ModRev: rev}
}

const (
	m1 = "1111111111111111aaaaaaaaaaaaaaaa"
	m2 = "2222222222222222bbbbbbbbbbbbbbbb"
)

// ro is a rollout record of web@.service (revision 1 aaaa... to 2
// bbbb..., two targets) in phase p after batches healthy batches.
func ro(p rollout.Phase, batches int) rollout.Rollout {
	r := rollout.Rollout{
		Spec: rollout.Spec{Unit: "web@.service", FromHash: strings.Repeat("a", 40), FromRevision: 1,
			ToHash: strings.Repeat("b", 40), ToRevision: 2, MaxParallel: 1},
		Phase: p, Batches: batches, Created: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC),
		Targets: []rollout.Target{{Name: "web@1.service", Status: rollout.TargetPending}, {Name: "web@2.service", Status: rollout.TargetPending}},
	}
	for i := range batches {
		r.Targets[i].Status = rollout.TargetUpdated
	}
	if p == rollout.PhaseReverting || p == rollout.PhaseFailed {
		r.Reason = "web@2.service failed"
	}
	if p == rollout.PhaseAborted {
		r.Reason = "aborted by admin"
	}
	return r
}

func TestDerive(t *testing.T) {
	put, del := etcdkv.EventPut, etcdkv.EventDelete
	unit := func(hash string, ds fleet.JobState) fleet.Unit {
		return fleet.Unit{Name: "web.service", Hash: hash, DesiredState: ds}
	}
	state := func(active, sub string) fleet.UnitState {
		return fleet.UnitState{Name: "web.service", MachineID: m1, ActiveState: active, SubState: sub}
	}
	cases := []struct {
		name       string
		typ        etcdkv.EventType
		kv, prev   *etcdkv.KV
		want       []string // types
		wantUnit   string
		wantMach   string
		wantState  string
		wantSubstr string
	}{
		{"unit submitted", put, kv("units/web.service", 5, unit("abc", "launched")), nil,
			[]string{fleet.EventUnitSubmitted}, "web.service", "", "launched", "submitted"},
		{"desired changed", put, kv("units/web.service", 6, unit("abc", "loaded")), kv("units/web.service", 5, unit("abc", "launched")),
			[]string{fleet.EventUnitDesired}, "web.service", "", "loaded", "launched → loaded"},
		{"replaced and desired", put, kv("units/web.service", 6, unit("def", "loaded")), kv("units/web.service", 5, unit("abc", "launched")),
			[]string{fleet.EventUnitReplaced, fleet.EventUnitDesired}, "web.service", "", "loaded", "replaced"},
		{"unit rewritten unchanged", put, kv("units/web.service", 6, unit("abc", "loaded")), kv("units/web.service", 5, unit("abc", "loaded")),
			nil, "", "", "", ""},
		{"unit destroyed", del, kv("units/web.service", 7, nil), kv("units/web.service", 5, unit("abc", "loaded")),
			[]string{fleet.EventUnitDestroyed}, "web.service", "", "", "destroyed"},
		{"scheduled", put, kv("schedule/"+m1+"/web.service", 8, map[string]string{"hash": "abc", "desiredState": "launched"}), nil,
			[]string{fleet.EventUnitScheduled}, "web.service", m1, "launched", "scheduled on 11111111"},
		{"schedule entry updated", put, kv("schedule/"+m1+"/web.service", 9, map[string]string{"desiredState": "loaded"}), kv("schedule/"+m1+"/web.service", 8, map[string]string{"desiredState": "launched"}),
			nil, "", "", "", ""},
		{"unscheduled", del, kv("schedule/"+m1+"/web.service", 10, nil), nil,
			[]string{fleet.EventUnitUnscheduled}, "web.service", m1, "", "unscheduled from 11111111"},
		{"placement index ignored", put, kv("placements/web.service/"+m1, 8, ""), nil, nil, "", "", "", ""},
		{"started", put, kv("states/"+m1+"/web.service", 11, state("active", "running")), kv("states/"+m1+"/web.service", 10, state("activating", "start")),
			[]string{fleet.EventUnitStarted}, "web.service", m1, "active/running", "started on 11111111"},
		{"started on first publish", put, kv("states/"+m1+"/web.service", 11, state("active", "running")), nil,
			[]string{fleet.EventUnitStarted}, "web.service", m1, "active/running", "started"},
		{"loaded, never ran", put, kv("states/"+m1+"/web.service", 11, state("inactive", "dead")), nil, nil, "", "", "", ""},
		{"activating ignored", put, kv("states/"+m1+"/web.service", 11, state("activating", "start")), kv("states/"+m1+"/web.service", 10, state("inactive", "dead")), nil, "", "", "", ""},
		{"same state republished", put, kv("states/"+m1+"/web.service", 12, state("active", "running")), kv("states/"+m1+"/web.service", 11, state("active", "running")), nil, "", "", "", ""},
		{"failed", put, kv("states/"+m1+"/web.service", 12, state("failed", "failed")), kv("states/"+m1+"/web.service", 11, state("active", "running")),
			[]string{fleet.EventUnitFailed}, "web.service", m1, "failed/failed", "failed on"},
		{"stopped", put, kv("states/"+m1+"/web.service", 13, state("inactive", "dead")), kv("states/"+m1+"/web.service", 12, state("deactivating", "stop-sigterm")),
			[]string{fleet.EventUnitStopped}, "web.service", m1, "inactive/dead", "stopped on"},
		{"state deleted ignored", del, kv("states/"+m1+"/web.service", 14, nil), nil, nil, "", "", "", ""},
		{"machine joined", put, kv("machines/"+m1, 15, fleet.Machine{ID: m1, PublicIP: "10.0.0.1"}), nil,
			[]string{fleet.EventMachineJoined}, "", m1, "", "11111111/10.0.0.1 joined"},
		{"machine updated ignored", put, kv("machines/"+m1, 16, fleet.Machine{ID: m1}), kv("machines/"+m1, 15, fleet.Machine{ID: m1}), nil, "", "", "", ""},
		{"machine lost", del, kv("machines/"+m1, 17, nil), kv("machines/"+m1, 15, fleet.Machine{ID: m1, PublicIP: "10.0.0.1"}),
			[]string{fleet.EventMachineLost}, "", m1, "", "11111111/10.0.0.1 lost"},
		{"machine lost without prev", del, kv("machines/"+m1, 17, nil), nil,
			[]string{fleet.EventMachineLost}, "", m1, "", "machine 11111111 lost"},
		{"unplaced", put, kv("reasons/web.service", 18, fleet.Reason{Unit: "web.service", Summary: "no machine matches"}), nil,
			[]string{fleet.EventUnitUnplaced}, "web.service", "", "", "no machine matches"},
		{"same reason ignored", put, kv("reasons/web.service", 19, fleet.Reason{Summary: "x"}), kv("reasons/web.service", 18, fleet.Reason{Summary: "x"}), nil, "", "", "", ""},
		{"leader key ignored", put, kv("engine/leader/694d", 20, m1), nil, nil, "", "", "", ""},
		{"metadata ignored", put, kv("metadata/"+m1+"/az", 21, "a"), nil, nil, "", "", "", ""},
		{"outside prefix", put, &etcdkv.KV{Key: "/other/units/x.service", Value: []byte("{}")}, nil, nil, "", "", "", ""},
		{"bad json", put, kv("units/web.service", 22, "{"), nil, nil, "", "", "", ""},
		{"dir only", put, kv("units/", 23, "{}"), nil, nil, "", "", "", ""},
		{"rollout started", put, kv("rollouts/web@.service", 24, ro(rollout.PhaseRunning, 0)), nil,
			[]string{fleet.EventRolloutStarted}, "web@.service", "", "running", "to revision 2 (bbbbbbb) started: 2 targets, 1 at a time"},
		{"rollout step without news", put, kv("rollouts/web@.service", 25, ro(rollout.PhaseRunning, 0)), kv("rollouts/web@.service", 24, ro(rollout.PhaseRunning, 0)),
			nil, "", "", "", ""},
		{"batch healthy", put, kv("rollouts/web@.service", 26, ro(rollout.PhaseRunning, 1)), kv("rollouts/web@.service", 25, ro(rollout.PhaseRunning, 0)),
			[]string{fleet.EventRolloutBatch}, "web@.service", "", "running", "batch 1 healthy"},
		{"batch and done", put, kv("rollouts/web@.service", 27, ro(rollout.PhaseDone, 2)), kv("rollouts/web@.service", 26, ro(rollout.PhaseRunning, 1)),
			[]string{fleet.EventRolloutBatch, fleet.EventRolloutDone}, "web@.service", "", "done", "done"},
		{"failed, reverting", put, kv("rollouts/web@.service", 28, ro(rollout.PhaseReverting, 1)), kv("rollouts/web@.service", 27, ro(rollout.PhaseRunning, 1)),
			[]string{fleet.EventRolloutFailed}, "web@.service", "", "reverting", "failed: web@2.service failed; reverting"},
		{"reverted", put, kv("rollouts/web@.service", 29, ro(rollout.PhaseReverted, 1)), kv("rollouts/web@.service", 28, ro(rollout.PhaseReverting, 1)),
			[]string{fleet.EventRolloutReverted}, "web@.service", "", "reverted", "reverted to revision 1 (aaaaaaa)"},
		{"paused is quiet", put, kv("rollouts/web@.service", 30, ro(rollout.PhasePaused, 1)), kv("rollouts/web@.service", 29, ro(rollout.PhaseRunning, 1)),
			nil, "", "", "", ""},
		{"aborted", put, kv("rollouts/web@.service", 31, ro(rollout.PhaseAborted, 1)), kv("rollouts/web@.service", 30, ro(rollout.PhasePaused, 1)),
			[]string{fleet.EventRolloutAborted}, "web@.service", "", "aborted", "aborted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Derive(keys.New(pfx), etcdkv.Event{Type: tc.typ, KV: *tc.kv, Prev: tc.prev})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %+v, want types %v", len(got), got, tc.want)
			}
			for i, e := range got {
				if e.Type != tc.want[i] {
					t.Errorf("event %d type %q, want %q", i, e.Type, tc.want[i])
				}
				if e.Rev != tc.kv.ModRev {
					t.Errorf("rev %d, want %d", e.Rev, tc.kv.ModRev)
				}
			}
			if len(got) == 0 {
				return
			}
			e := got[len(got)-1]
			if e.Unit != tc.wantUnit || e.Machine != tc.wantMach || e.State != tc.wantState {
				t.Errorf("got unit %q machine %q state %q; want %q %q %q", e.Unit, e.Machine, e.State, tc.wantUnit, tc.wantMach, tc.wantState)
			}
			found := false
			for _, e := range got {
				if contains(e.Message, tc.wantSubstr) {
					found = true
				}
			}
			if !found {
				t.Errorf("no message contains %q: %+v", tc.wantSubstr, got)
			}
		})
	}
}

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}

func TestCoalesce(t *testing.T) {
	un := func(rev int64, unit, m string) fleet.Event {
		return fleet.Event{Rev: rev, Type: fleet.EventUnitUnscheduled, Unit: unit, Machine: m}
	}
	sc := func(rev int64, unit, m string) fleet.Event {
		return fleet.Event{Rev: rev, Type: fleet.EventUnitScheduled, Unit: unit, Machine: m}
	}
	other := fleet.Event{Rev: 5, Type: fleet.EventMachineLost, Machine: m1}
	cases := []struct {
		name string
		in   []fleet.Event
		want []string
	}{
		{"same revision", []fleet.Event{other, un(6, "a", m1), sc(6, "a", m2)}, []string{fleet.EventMachineLost, fleet.EventUnitRescheduled}},
		{"adjacent revisions", []fleet.Event{un(6, "a", m1), sc(7, "a", m2)}, []string{fleet.EventUnitRescheduled}},
		{"too far apart", []fleet.Event{un(6, "a", m1), sc(8, "a", m2)}, []string{fleet.EventUnitUnscheduled, fleet.EventUnitScheduled}},
		{"same machine", []fleet.Event{un(6, "a", m1), sc(6, "a", m1)}, []string{fleet.EventUnitUnscheduled, fleet.EventUnitScheduled}},
		{"other unit", []fleet.Event{un(6, "a", m1), sc(6, "b", m2)}, []string{fleet.EventUnitUnscheduled, fleet.EventUnitScheduled}},
		{"scheduled first", []fleet.Event{sc(6, "a", m2), un(6, "a", m1)}, []string{fleet.EventUnitScheduled, fleet.EventUnitUnscheduled}},
		{"two moves", []fleet.Event{un(6, "a", m1), un(6, "b", m1), sc(6, "b", m2), sc(6, "a", m2)}, []string{fleet.EventUnitRescheduled, fleet.EventUnitRescheduled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Coalesce(tc.in)
			var types []string
			for _, e := range got {
				types = append(types, e.Type)
			}
			if len(types) != len(tc.want) {
				t.Fatalf("got %v, want %v", types, tc.want)
			}
			for i := range types {
				if types[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", types, tc.want)
				}
			}
			for _, e := range got {
				if e.Type == fleet.EventUnitRescheduled && (e.From != m1 || e.Machine != m2) {
					t.Errorf("rescheduled %+v: want from %s to %s", e, m1, m2)
				}
			}
		})
	}
}

package engine

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
)

func TestMassLoss(t *testing.T) {
	tests := []struct {
		n, total int
		want     bool
	}{
		{0, 0, false}, {0, 3, false},
		{1, 1, true},                // single-machine cluster: all of it
		{1, 2, false}, {2, 2, true}, // two machines: both, not one
		{1, 3, false}, {2, 3, true}, {3, 3, true},
		{1, 4, false}, {2, 4, true},
		{2, 5, false}, {3, 5, true},
		{1, 100, false}, {49, 100, false}, {50, 100, true},
	}
	for _, tt := range tests {
		if got := massLoss(tt.n, tt.total); got != tt.want {
			t.Errorf("massLoss(%d, %d) = %v, want %v", tt.n, tt.total, got, tt.want)
		}
	}
}

// TestHolds runs holds over sequences of rounds. ttl is 5 s, so the settle
// time is 200 ms.
func TestHolds(t *testing.T) {
	const ttl = 5 * time.Second
	if s := holdSettle(ttl); s != 200*time.Millisecond {
		t.Fatalf("holdSettle(5s) = %v", s)
	}
	type step struct {
		at          time.Duration
		live, sched []string
		keep        []string                 // machines whose units stay in place
		held        map[string]time.Duration // held machines -> deadline
		started     []string
		lost, total int // logged counts, when started
		returned    []string
		expired     []string
	}
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "one of three dies: kept for the settle time only, then its units move",
			steps: []step{
				{at: 0, live: abc, sched: abc},
				{at: time.Second, live: []string{"a", "b"}, sched: abc, keep: []string{"c"}},
				{at: 1100 * time.Millisecond, live: []string{"a", "b"}, sched: abc, keep: []string{"c"}},
				{at: 1200 * time.Millisecond, live: []string{"a", "b"}, sched: []string{"a", "b"}},
			},
		},
		{
			name: "two of three at once: held for ttl, then released",
			steps: []step{
				{at: 0, live: abc, sched: abc},
				{at: time.Second, live: []string{"a"}, sched: abc, keep: []string{"b", "c"},
					held: map[string]time.Duration{"b": 6 * time.Second, "c": 6 * time.Second}, started: []string{"b", "c"}, lost: 2, total: 3},
				{at: 5999 * time.Millisecond, live: []string{"a"}, sched: abc, keep: []string{"b", "c"},
					held: map[string]time.Duration{"b": 6 * time.Second, "c": 6 * time.Second}},
				{at: 6 * time.Second, live: []string{"a"}, sched: abc, expired: []string{"b", "c"}},
				// Released machines are not lost again.
				{at: 7 * time.Second, live: []string{"a"}, sched: []string{"a"}},
			},
		},
		{
			name: "all three at once, back within the grace",
			steps: []step{
				{at: 0, live: abc, sched: abc},
				{at: time.Second, sched: abc, keep: abc,
					held: map[string]time.Duration{"a": 6 * time.Second, "b": 6 * time.Second, "c": 6 * time.Second}, started: abc, lost: 3, total: 3},
				{at: 3 * time.Second, live: []string{"b"}, sched: abc, keep: []string{"a", "c"},
					held: map[string]time.Duration{"a": 6 * time.Second, "c": 6 * time.Second}, returned: []string{"b"}},
				{at: 4 * time.Second, live: abc, sched: abc, returned: []string{"a", "c"}},
				{at: 20 * time.Second, live: abc, sched: abc},
			},
		},
		{
			name: "lease revocations a few ms apart: the first is still settling when the rest follow",
			steps: []step{
				{at: 0, live: abc, sched: abc},
				{at: time.Second, live: []string{"a", "b"}, sched: abc, keep: []string{"c"}},
				{at: time.Second + 5*time.Millisecond, live: []string{"a"}, sched: abc, keep: []string{"b", "c"},
					held: map[string]time.Duration{"b": 6*time.Second + 5*time.Millisecond, "c": 6 * time.Second}, started: []string{"b", "c"}, lost: 2, total: 3},
			},
		},
		{
			name: "losses within ttl of each other count together",
			steps: []step{
				{at: 0, live: []string{"a", "b", "c", "d"}},
				{at: time.Second, live: abc, keep: []string{"d"}},
				{at: 1500 * time.Millisecond, live: abc},
				{at: 3 * time.Second, live: []string{"a", "b"}, keep: []string{"c", "d"},
					held: map[string]time.Duration{"c": 8 * time.Second, "d": 6 * time.Second}, started: []string{"c", "d"}, lost: 2, total: 4},
			},
		},
		{
			name: "losses more than ttl apart do not",
			steps: []step{
				{at: 0, live: []string{"a", "b", "c", "d"}},
				{at: time.Second, live: abc, keep: []string{"d"}},
				{at: 7 * time.Second, live: []string{"a", "b"}, keep: []string{"c"}},
				{at: 7300 * time.Millisecond, live: []string{"a", "b"}},
			},
		},
		{
			name: "two of five is not a mass loss, three of five is",
			steps: []step{
				{at: 0, live: []string{"a", "b", "c", "d", "e"}},
				{at: time.Second, live: abc, keep: []string{"d", "e"}},
				{at: 1100 * time.Millisecond, live: []string{"a", "b"}, keep: []string{"c", "d", "e"},
					held: map[string]time.Duration{"c": 6100 * time.Millisecond, "d": 6 * time.Second, "e": 6 * time.Second}, started: []string{"c", "d", "e"}, lost: 3, total: 5},
			},
		},
		{
			name: "new leader: the schedule names machines that are missing",
			steps: []step{
				{at: time.Second, live: []string{"a"}, sched: abc, keep: []string{"b", "c"},
					held: map[string]time.Duration{"b": 6 * time.Second, "c": 6 * time.Second}, started: []string{"b", "c"}, lost: 2, total: 3},
			},
		},
		{
			name: "new leader: one missing machine of three moves after the settle time",
			steps: []step{
				{at: time.Second, live: []string{"a", "b"}, sched: abc, keep: []string{"c"}},
				{at: 1200 * time.Millisecond, live: []string{"a", "b"}, sched: abc},
			},
		},
		{
			name: "new leader: machines with no units are not counted as lost",
			steps: []step{
				{at: time.Second, live: []string{"a", "b", "c"}, sched: []string{"a", "d"}, keep: []string{"d"}},
			},
		},
		{
			name: "single-machine cluster: its loss is held",
			steps: []step{
				{at: 0, live: []string{"a"}, sched: []string{"a"}},
				{at: time.Second, sched: []string{"a"}, keep: []string{"a"},
					held: map[string]time.Duration{"a": 6 * time.Second}, started: []string{"a"}, lost: 1, total: 1},
			},
		},
		{
			name: "two-machine cluster: one is not held, both are",
			steps: []step{
				{at: 0, live: []string{"a", "b"}},
				{at: time.Second, live: []string{"a"}, keep: []string{"b"}},
				{at: 2 * time.Second, live: []string{"a"}},
				{at: 3 * time.Second, keep: []string{"a", "b"},
					held: map[string]time.Duration{"a": 8 * time.Second, "b": 6 * time.Second}, started: []string{"a", "b"}, lost: 2, total: 2},
			},
		},
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	str := func(xs []string) string { return fmt.Sprint(slices.Sorted(slices.Values(xs))) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st holdState
			for i, s := range tt.steps {
				now := base.Add(s.at)
				next, ev := holds(st, now, s.live, s.sched, ttl)
				// Pure: same input, same output, input untouched.
				if again, ev2 := holds(st, now, s.live, s.sched, ttl); !reflect.DeepEqual(again, next) || !reflect.DeepEqual(ev, ev2) {
					t.Fatalf("step %d: not deterministic", i)
				}
				st = next
				if got := slices.Sorted(maps.Keys(st.keep(now, ttl))); str(got) != str(s.keep) {
					t.Errorf("step %d: keep = %v, want %v", i, got, s.keep)
				}
				held := map[string]time.Duration{}
				for id, d := range st.held {
					held[id] = d.Sub(base)
				}
				want := s.held
				if want == nil {
					want = map[string]time.Duration{}
				}
				if !reflect.DeepEqual(held, want) {
					t.Errorf("step %d: held = %v, want %v", i, held, want)
				}
				if str(ev.Started) != str(s.started) || str(ev.Returned) != str(s.returned) || str(ev.Expired) != str(s.expired) {
					t.Errorf("step %d: events started %v returned %v expired %v, want %v %v %v",
						i, ev.Started, ev.Returned, ev.Expired, s.started, s.returned, s.expired)
				}
				if ev.Lost != s.lost || ev.Total != s.total {
					t.Errorf("step %d: logged %d of %d, want %d of %d", i, ev.Lost, ev.Total, s.lost, s.total)
				}
				// next() is after now, and keep() is the same until then.
				if nx := st.next(now, ttl); !nx.IsZero() {
					if !nx.After(now) {
						t.Errorf("step %d: next %v is not after now", i, nx)
					}
					before := st.keep(nx.Add(-time.Nanosecond), ttl)
					if !maps.Equal(before, st.keep(now, ttl)) || maps.Equal(before, st.keep(nx, ttl)) {
						t.Errorf("step %d: keep does not change exactly at next %v", i, nx)
					}
				} else if len(st.keep(now, ttl)) != 0 {
					t.Errorf("step %d: machines kept but no next wake-up", i)
				}
			}
		})
	}
}

func TestHoldUnits(t *testing.T) {
	global := fleet.Requirements{Global: true}
	in := schedule.Snapshot{
		Machines: []fleet.Machine{{ID: "a"}},
		Units: []schedule.Unit{
			{Name: "held.service", Desired: fleet.JobStateLaunched},
			{Name: "both.service", Desired: fleet.JobStateLaunched},
			{Name: "live.service", Desired: fleet.JobStateLaunched},
			{Name: "gone.service", Desired: fleet.JobStateLaunched},
			{Name: "stopped.service", Desired: fleet.JobStateInactive},
			{Name: "global.service", Desired: fleet.JobStateLaunched, Req: global},
			{Name: "new.service", Desired: fleet.JobStateLaunched, Req: fleet.Requirements{MachineID: "b"}},
		},
		Current: map[string][]string{
			"held.service":    {"c", "b"}, // duplicate entries: one kept machine, the smallest
			"both.service":    {"b", "a"}, // also on a live machine: the scheduler keeps it there
			"live.service":    {"a"},
			"gone.service":    {"z"}, // on a machine that is not kept: moves
			"stopped.service": {"b"},
			"global.service":  {"a", "b", "c", "z"},
		},
	}
	keep := map[string]bool{"b": true, "c": true}
	held := holdUnits(&in, keep)
	wantHeld := map[string][]string{"held.service": {"b"}, "global.service": {"b", "c"}}
	if !reflect.DeepEqual(held, wantHeld) {
		t.Errorf("held = %v, want %v", held, wantHeld)
	}
	var names []string
	for _, u := range in.Units {
		names = append(names, u.Name)
	}
	if want := []string{"both.service", "live.service", "gone.service", "stopped.service", "global.service", "new.service"}; !slices.Equal(names, want) {
		t.Errorf("units left for the scheduler = %v, want %v", names, want)
	}
	res := schedule.Schedule(in)
	applyHeld(&res, held, keep)
	wantAssign := map[string][]string{
		"held.service":   {"b"},
		"both.service":   {"a"},
		"live.service":   {"a"},
		"gone.service":   {"a"},
		"global.service": {"a", "b", "c"},
	}
	if !reflect.DeepEqual(res.Assign, wantAssign) {
		t.Errorf("Assign = %v, want %v", res.Assign, wantAssign)
	}
	// Nothing new goes to a held machine: new.service wants b and waits.
	r, ok := res.Reasons["new.service"]
	if !ok || r.PerMachine["b"] != reasonHeld {
		t.Errorf("new.service reason = %+v, want one naming b as held", r)
	}
	if _, ok := res.Reasons["held.service"]; ok {
		t.Errorf("held.service has a reason")
	}
	// No kept machine: nothing changes.
	in2 := schedule.Snapshot{Units: []schedule.Unit{{Name: "x.service"}}, Current: map[string][]string{"x.service": {"b"}}}
	if h := holdUnits(&in2, nil); h != nil || len(in2.Units) != 1 {
		t.Errorf("holdUnits with no kept machine changed something: %v %v", h, in2.Units)
	}
}

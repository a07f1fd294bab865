package schedule

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

// build turns the compact transcript syntax into a snapshot: machines are
// "ID k=v ...", units "NAME opt ..." (see TestTranscripts), current is
// "unit=ID,ID ..." entries.
func build(t testing.TB, machines, units, current []string) (Snapshot, []string) {
	t.Helper()
	s := newStory()
	for _, m := range machines {
		if err := s.do(append([]string{"machine", "add"}, strings.Fields(m)...)); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range units {
		if err := s.do(append([]string{"unit", "add"}, strings.Fields(u)...)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range current {
		name, ids, _ := strings.Cut(c, "=")
		s.current[name] = strings.Split(ids, ",")
	}
	return s.snapshot(), s.machineIDs()
}

// TestRules has one or more rows per rule of doc.go; each row's name
// starts with the rule it checks. want is formatResult's rendering.
func TestRules(t *testing.T) {
	tests := []struct {
		name     string
		machines []string
		units    []string
		current  []string
		want     string
	}{
		{
			name:     "1 inactive unit is not placed and has no reason",
			machines: []string{"m1"},
			units:    []string{"a.service state=inactive", "b.service state=loaded"},
			want:     "m1: b.service\n",
		},
		{
			name:     "1 inactive unit is removed from its machine",
			machines: []string{"m1"},
			units:    []string{"a.service state=inactive"},
			current:  []string{"a.service=m1"},
			want:     "m1: -\n",
		},
		{
			name:     "1 templates are ignored",
			machines: []string{"m1"},
			units:    []string{"web@.service"},
			want:     "m1: -\n",
		},
		{
			name:  "1 no machines",
			units: []string{"a.service"},
			want:  "unplaced:\n  a.service: no machines in the cluster\n",
		},
		{
			name:     "2 MachineOf target placed before follower whatever the names",
			machines: []string{"m1", "m2"},
			units:    []string{"a-follower.service machineof=z-target.service", "z-target.service"},
			want:     "m1: a-follower.service z-target.service\nm2: -\n",
		},
		{
			name:     "2 chain of followers",
			machines: []string{"m1", "m2"},
			units:    []string{"x.service", "a.service machineof=b.service", "b.service machineof=c.service", "c.service"},
			want:     "m1: a.service b.service c.service\nm2: x.service\n",
		},
		{
			name:     "3 sticky unit stays on a more loaded machine",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service", "b.service"},
			current:  []string{"a.service=m2", "b.service=m2"},
			want:     "m1: -\nm2: a.service b.service\n",
		},
		{
			name:     "3 unit on a dead machine is re-placed",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service", "b.service"},
			current:  []string{"a.service=m2", "b.service=dead"},
			want:     "m1: b.service\nm2: a.service\n",
		},
		{
			name:     "3 sticky unit no longer feasible moves",
			machines: []string{"m1 disk=hdd", "m2 disk=ssd"},
			units:    []string{"a.service metadata=disk=ssd"},
			current:  []string{"a.service=m1"},
			want:     "m1: -\nm2: a.service\n",
		},
		{
			name:     "3 follower follows its target to a new machine",
			machines: []string{"m1 disk=hdd", "m2 disk=ssd"},
			units:    []string{"db.service metadata=disk=ssd", "helper.service machineof=db.service"},
			current:  []string{"db.service=m1", "helper.service=m1"},
			want:     "m1: -\nm2: db.service helper.service\n",
		},
		{
			name:     "4 global on every matching machine, counted in load",
			machines: []string{"m1 role=web", "m2 role=db", "m3 role=web"},
			units:    []string{"g.service global metadata=role=web", "a.service", "b.service"},
			want:     "m1: b.service g.service\nm2: a.service\nm3: g.service\n",
		},
		{
			name:     "4 global units conflicting with each other: first by name wins",
			machines: []string{"m1"},
			units:    []string{"g1.service global conflicts=g2.service", "g2.service global"},
			want:     "m1: g1.service\nunplaced:\n  g2.service: no machine can run g2.service: conflicts with g1.service on m1\n",
		},
		{
			name:     "4 non-global unit avoids global unit it conflicts with",
			machines: []string{"m1", "m2 role=x"},
			units:    []string{"g.service global metadata=role=x", "a.service conflicts=g.service"},
			current:  []string{"a.service=m2"},
			want:     "m1: a.service\nm2: g.service\n",
		},
		{
			name:     "4 Replaces cannot displace a global unit",
			machines: []string{"m1"},
			units:    []string{"g.service global", "a.service replaces=g.service"},
			want:     "m1: g.service\nunplaced:\n  a.service: no machine can run a.service: cannot displace g.service on m1 (Replaces)\n",
		},
		{
			name:     "5a MachineID full",
			machines: []string{"aaaaaaaa11", "aaaaaaaa22"},
			units:    []string{"a.service machineid=aaaaaaaa22"},
			want:     "aaaaaaaa11: -\naaaaaaaa22: a.service\n",
		},
		{
			name:     "5a MachineID 8-char short ID matches the prefix",
			machines: []string{"0000000011", "bbbbbbbb22"},
			units:    []string{"a.service machineid=bbbbbbbb"},
			want:     "0000000011: -\nbbbbbbbb22: a.service\n",
		},
		{
			name:     "5a MachineID other prefixes do not match",
			machines: []string{"bbbbbbbb22"},
			units:    []string{"a.service machineid=bbbb", "b.service machineid=bbbbbbbb2"},
			want: "bbbbbbbb22: -\nunplaced:\n  a.service: MachineID=bbbb matches no live machine\n" +
				"  b.service: MachineID=bbbbbbbb2 matches no live machine\n",
		},
		{
			name:     "5b MachineOf all peers must share the machine",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service machineid=m1", "b.service machineid=m2", "c.service machineof=a.service machineof=b.service"},
			want:     "m1: a.service\nm2: b.service\nunplaced:\n  c.service: peers a.service, b.service (MachineOf) share no machine\n",
		},
		{
			name:     "5b MachineOf follower blocked on its peer's machine",
			machines: []string{"m1", "m2"},
			units:    []string{"db.service machineid=m1", "x.service machineid=m1", "h.service machineof=db.service conflicts=x.service"},
			want:     "m1: db.service x.service\nm2: -\nunplaced:\n  h.service: no machine can run h.service: conflicts with x.service on m1\n",
		},
		{
			name:     "5b MachineOf a global unit",
			machines: []string{"m1 role=a", "m2 role=b", "m3 role=a"},
			units:    []string{"g.service global metadata=role=a", "x.service", "f.service machineof=g.service"},
			want:     "m1: f.service g.service\nm2: x.service\nm3: g.service\n",
		},
		{
			name:     "5b MachineOf self is a cycle",
			machines: []string{"m1"},
			units:    []string{"a.service machineof=a.service"},
			want:     "m1: -\nunplaced:\n  a.service: MachineOf cycle among a.service\n",
		},
		{
			name:     "5c metadata missing key",
			machines: []string{"m1 region=x", "m2 region=x disk=ssd"},
			units:    []string{"a.service metadata=disk=ssd metadata=region=x"},
			want:     "m1: -\nm2: a.service\n",
		},
		{
			name:     "5c metadata is exact: no globs, case-sensitive",
			machines: []string{"m1 region=US-east"},
			units:    []string{"a.service metadata=region=us-east", "b.service metadata=region=US-*"},
			want: "m1: -\nunplaced:\n  a.service: no machine has metadata region=us-east (MachineMetadata)\n" +
				"  b.service: no machine has metadata region=US-* (MachineMetadata)\n",
		},
		{
			name:     "5c metadata with MachineID: summary names the metadata",
			machines: []string{"m1 disk=hdd", "m2 disk=ssd"},
			units:    []string{"a.service machineid=m1 metadata=disk=ssd"},
			want:     "m1: -\nm2: -\nunplaced:\n  a.service: no machine can run a.service: metadata disk=ssd not met on m1\n",
		},
		{
			name:     "5d conflicts checked both ways",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service machineid=m1", "b.service conflicts=a.service", "c.service machineid=m2 conflicts=d*", "d1.service"},
			want:     "m1: a.service d1.service\nm2: b.service c.service\n",
		},
		{
			name:     "5d a unit never conflicts with itself",
			machines: []string{"m1"},
			units:    []string{"hello.service conflicts=hello*"},
			current:  []string{"hello.service=m1"},
			want:     "m1: hello.service\n",
		},
		{
			name:     "5d character classes and ?",
			machines: []string{"m1"},
			units:    []string{"a1.service conflicts=a[0-9].service", "a2.service", "ab.service conflicts=a?.service"},
			want:     "m1: a1.service\nunplaced:\n  a2.service: no machine can run a2.service: conflicts with a1.service on m1\n  ab.service: no machine can run ab.service: conflicts with a1.service on m1\n",
		},
		{
			name:     "5d bad pattern matches nothing",
			machines: []string{"m1"},
			units:    []string{"a.service conflicts=[", "b.service"},
			want:     "m1: a.service b.service\n",
		},
		{
			name:     "5e unit replaced by a unit already there cannot join it",
			machines: []string{"m1", "m2"},
			units:    []string{"new.service replaces=old.service", "old.service"},
			current:  []string{"new.service=m1"},
			want:     "m1: new.service\nm2: old.service\n",
		},
		{
			name:     "6 Replaces displaces to a feasible machine",
			machines: []string{"m1", "m2 disk=ssd", "m3"},
			units:    []string{"old.service metadata=disk=ssd", "new.service machineid=m2 replaces=old.service", "x.service", "y.service"},
			current:  []string{"old.service=m2", "x.service=m1", "y.service=m3"},
			want: "m1: x.service\nm2: new.service\nm3: y.service\nunplaced:\n" +
				"  old.service: no machine can run old.service: replaced by new.service on m2 (Replaces)\n",
		},
		{
			name:     "6 Replaces: displaced unit takes its followers along",
			machines: []string{"m1", "m2"},
			units:    []string{"old.service", "side.service machineof=old.service", "new.service machineid=m1 replaces=old.service"},
			current:  []string{"old.service=m1", "side.service=m1"},
			want:     "m1: new.service\nm2: old.service side.service\n",
		},
		{
			name:     "6 Replaces ignores a conflict declared by the unit it displaces",
			machines: []string{"m1", "m2"},
			units:    []string{"app-v1.service conflicts=app-*", "app-v2.service machineid=m1 replaces=app-v1.service", "z.service machineid=m2"},
			current:  []string{"app-v1.service=m1"},
			want:     "m1: app-v2.service\nm2: app-v1.service z.service\n",
		},
		{
			name:     "6 Replaces does not prefer the replaced unit's machine",
			machines: []string{"m1", "m2"},
			units:    []string{"old.service", "new.service replaces=old.service"},
			current:  []string{"old.service=m1"},
			want:     "m1: old.service\nm2: new.service\n",
		},
		{
			name:     "6 circular Replaces: only one on a single machine",
			machines: []string{"m1"},
			units:    []string{"a.service replaces=b.service", "b.service replaces=a.service"},
			want:     "m1: a.service\nunplaced:\n  b.service: no machine can run b.service: replaced by a.service on m1 (Replaces)\n",
		},
		{
			name:     "7 least loaded, ties by machine ID",
			machines: []string{"m2", "m1", "m3"},
			units:    []string{"a.service", "b.service", "c.service", "d.service"},
			current:  []string{"a.service=m3"},
			want:     "m1: b.service d.service\nm2: c.service\nm3: a.service\n",
		},
		{
			name:     "8 two sticky units start to conflict: first in order stays",
			machines: []string{"m1", "m2"},
			units:    []string{"b.service conflicts=a.service", "a.service"},
			current:  []string{"a.service=m1", "b.service=m1"},
			want:     "m1: a.service\nm2: b.service\n",
		},
		{
			name:     "8 sticky conflict: order is (MachineOf depth, name); the loser's follower follows it",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service machineof=z.service", "z.service", "y.service conflicts=z.service"},
			current:  []string{"a.service=m1", "z.service=m1", "y.service=m1"},
			want:     "m1: y.service\nm2: a.service z.service\n",
		},
		{
			name:     "9 unit freed by displacement is placed",
			machines: []string{"m1"},
			units:    []string{"a.service conflicts=old.service", "new.service replaces=old.service", "old.service"},
			current:  []string{"old.service=m1"},
			want: "m1: a.service new.service\nunplaced:\n" +
				"  old.service: no machine can run old.service: replaced by new.service on m1 (Replaces)\n",
		},
		{
			name:     "12 drain: units on a draining machine move",
			machines: []string{"m1 draining=true", "m2", "m3"},
			units:    []string{"a.service", "b.service", "c.service"},
			current:  []string{"a.service=m1", "b.service=m1", "c.service=m3"},
			want:     "m1: -\nm2: a.service b.service\nm3: c.service\n",
		},
		{
			name:     "12 drain: no new placement on a draining machine, however lightly loaded",
			machines: []string{"m1 draining=true", "m2"},
			units:    []string{"a.service", "b.service", "c.service"},
			current:  []string{"a.service=m2", "b.service=m2"},
			want:     "m1: -\nm2: a.service b.service c.service\n",
		},
		{
			name:     "12 drain: only the value true drains",
			machines: []string{"m1 draining=false", "m2 draining=yes"},
			units:    []string{"a.service", "b.service"},
			want:     "m1: a.service\nm2: b.service\n",
		},
		{
			name:     "12 drain: a global unit leaves a draining machine",
			machines: []string{"m1 draining=true", "m2"},
			units:    []string{"g.service global"},
			current:  []string{"g.service=m1,m2"},
			want:     "m1: -\nm2: g.service\n",
		},
		{
			name:     "12 drain: a global unit only a draining machine accepts is unplaced, naming the drain",
			machines: []string{"m1 draining=true role=x", "m2 role=y"},
			units:    []string{"g.service global metadata=role=x"},
			current:  []string{"g.service=m1"},
			want:     "m1: -\nm2: -\nunplaced:\n  g.service: no machine can run g.service: m1 is draining\n",
		},
		{
			name:     "12 drain: a unit pinned by MachineID to a draining machine is unplaced, naming the drain",
			machines: []string{"m1 draining=true", "m2"},
			units:    []string{"a.service machineid=m1"},
			current:  []string{"a.service=m1"},
			want:     "m1: -\nm2: -\nunplaced:\n  a.service: no machine can run a.service: m1 is draining\n",
		},
		{
			name:     "12 drain: an 8-character MachineID skips the draining machine it matches",
			machines: []string{"aaaaaaaa11 draining=true", "aaaaaaaa22", "bbbbbbbb33"},
			units:    []string{"a.service machineid=aaaaaaaa"},
			current:  []string{"a.service=aaaaaaaa11"},
			want:     "aaaaaaaa11: -\naaaaaaaa22: a.service\nbbbbbbbb33: -\n",
		},
		{
			name:     "12 drain: a MachineOf follower moves with its target",
			machines: []string{"m1 draining=true", "m2", "m3"},
			units:    []string{"db.service", "helper.service machineof=db.service", "x.service"},
			current:  []string{"db.service=m1", "helper.service=m1", "x.service=m2"},
			want:     "m1: -\nm2: x.service\nm3: db.service helper.service\n",
		},
		{
			name:     "12 drain: the follower of a unit pinned to a draining machine is unplaced",
			machines: []string{"m1 draining=true", "m2"},
			units:    []string{"db.service machineid=m1", "helper.service machineof=db.service"},
			current:  []string{"db.service=m1", "helper.service=m1"},
			want: "m1: -\nm2: -\nunplaced:\n  db.service: no machine can run db.service: m1 is draining\n" +
				"  helper.service: peer db.service (MachineOf) is not scheduled\n",
		},
		{
			name:     "12 drain: a unit whose metadata only a draining machine has names the drain",
			machines: []string{"m1 draining=true disk=ssd", "m2 disk=hdd"},
			units:    []string{"a.service metadata=disk=ssd"},
			want:     "m1: -\nm2: -\nunplaced:\n  a.service: no machine can run a.service: m1 is draining\n",
		},
		{
			name:     "12 drain is the last filter: a draining machine rejected otherwise is not named for the drain",
			machines: []string{"m1 draining=true disk=hdd", "m2 disk=hdd"},
			units:    []string{"a.service metadata=disk=ssd", "b.service machineid=m2 conflicts=c.service", "c.service machineid=m2"},
			want: "m1: -\nm2: b.service\nunplaced:\n  a.service: no machine has metadata disk=ssd (MachineMetadata)\n" +
				"  c.service: no machine can run c.service: conflicts with b.service on m2\n",
		},
		{
			name:     "12 drain: every machine draining",
			machines: []string{"m1 draining=true", "m2 draining=true"},
			units:    []string{"a.service"},
			current:  []string{"a.service=m2"},
			want:     "m1: -\nm2: -\nunplaced:\n  a.service: no machine can run a.service: m1, m2 are draining\n",
		},
		{
			name:     "12 drain: a unit Replaces displaced cannot fall back on a draining machine",
			machines: []string{"m1 draining=true", "m2"},
			units:    []string{"old.service", "new.service replaces=old.service"},
			current:  []string{"old.service=m1"},
			want:     "m1: -\nm2: new.service\nunplaced:\n  old.service: no machine can run old.service: m1 is draining\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, ids := build(t, tt.machines, tt.units, tt.current)
			got := formatResult(Schedule(snap), ids, false)
			if got != tt.want {
				t.Errorf("got\n%swant\n%s", got, tt.want)
			}
		})
	}
}

func TestReasonPerMachine(t *testing.T) {
	snap, _ := build(t, []string{"aaaaaaaa-1 disk=hdd", "bbbbbbbb-2 disk=ssd", "cccccccc-3 disk=ssd"},
		[]string{"x.service machineid=bbbbbbbb-2", "p.service machineid=cccccccc-3",
			"u.service metadata=disk=ssd conflicts=x.service machineof=p.service conflicts=p.service"}, nil)
	r := Schedule(snap).Reasons["u.service"]
	want := fleet.Reason{
		Unit:    "u.service",
		Summary: "no machine can run u.service: conflicts with p.service on cccccccc",
		PerMachine: map[string]string{
			"aaaaaaaa-1": "peer p.service (MachineOf) is on cccccccc",
			"bbbbbbbb-2": "peer p.service (MachineOf) is on cccccccc",
			"cccccccc-3": "conflicts with p.service",
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %#v\nwant %#v", r, want)
	}
}

// Rule 12: a draining machine's PerMachine entry is ReasonDraining whatever
// else keeps the unit off it; the others' entries are as without the drain.
func TestReasonPerMachineDraining(t *testing.T) {
	snap, _ := build(t, []string{"m1 draining=true disk=ssd", "m2 draining=true disk=hdd", "m3 disk=hdd"},
		[]string{"a.service metadata=disk=ssd"}, []string{"a.service=m1"})
	r := Schedule(snap).Reasons["a.service"]
	want := fleet.Reason{
		Unit:    "a.service",
		Summary: "no machine can run a.service: m1 is draining",
		PerMachine: map[string]string{
			"m1": ReasonDraining,
			"m2": ReasonDraining,
			"m3": "metadata disk=ssd not met: machine has disk=hdd",
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %#v\nwant %#v", r, want)
	}
	if ReasonDraining != "machine is draining" {
		t.Errorf("ReasonDraining = %q: fleetctl, the API and docs/api-extensions.md show \"machine is draining\"", ReasonDraining)
	}
}

func TestReasonSummaryCapsItems(t *testing.T) {
	var machines, units []string
	for i := range 8 {
		id := string(rune('a'+i)) + "0"
		machines = append(machines, id)
		units = append(units, "w"+id+".service machineid="+id+" conflicts=w*")
	}
	units = append(units, "z.service conflicts=w*")
	snap, _ := build(t, machines, units, nil)
	got := Schedule(snap).Reasons["z.service"].Summary
	want := "no machine can run z.service: conflicts with wa0.service on a0, wb0.service on b0, wc0.service on c0, " +
		"wd0.service on d0, we0.service on e0 and 3 more"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestReasonBudget(t *testing.T) {
	snap, _ := build(t, []string{"m1", "m2"}, []string{"a.service machineid=x", "b.service machineid=x", "c.service machineid=x"}, nil)
	snap.MaxReasonEntries = 5 // room for two units of two machines each
	res := Schedule(snap)
	for name, n := range map[string]int{"a.service": 2, "b.service": 2, "c.service": 0} {
		if r := res.Reasons[name]; len(r.PerMachine) != n || r.Summary == "" {
			t.Errorf("%s: %d PerMachine entries (want %d), summary %q", name, len(r.PerMachine), n, r.Summary)
		}
	}
	snap.MaxReasonEntries = -1
	for _, r := range Schedule(snap).Reasons {
		if r.PerMachine != nil {
			t.Errorf("%s: PerMachine with a negative budget", r.Unit)
		}
	}
}

func TestDuplicatesAreOrderIndependent(t *testing.T) {
	a := Unit{Name: "a.service", Desired: fleet.JobStateLaunched, Req: fleet.Requirements{MachineID: "m1"}}
	b := Unit{Name: "a.service", Desired: fleet.JobStateLaunched, Req: fleet.Requirements{MachineID: "m2"}}
	ms := []fleet.Machine{{ID: "m1"}, {ID: "m2"}, {ID: "m2", Metadata: map[string]string{"x": "y"}}}
	r1 := Schedule(Snapshot{Machines: ms, Units: []Unit{a, b}})
	r2 := Schedule(Snapshot{Machines: []fleet.Machine{ms[2], ms[1], ms[0]}, Units: []Unit{b, a}})
	if !reflect.DeepEqual(r1, r2) {
		t.Errorf("%v != %v", r1, r2)
	}
}

func TestDiff(t *testing.T) {
	cur := map[string][]string{"a": {"m1"}, "b": {"m2", "m2"}, "g": {"m1", "m2"}}
	next := map[string][]string{"a": {"m1"}, "b": {"m3"}, "g": {"m2", "m3"}, "c": {"m1"}}
	add, remove := Diff(cur, next)
	wantAdd := []Change{{"b", "m3"}, {"c", "m1"}, {"g", "m3"}}
	wantRemove := []Change{{"b", "m2"}, {"g", "m1"}}
	if !reflect.DeepEqual(add, wantAdd) || !reflect.DeepEqual(remove, wantRemove) {
		t.Errorf("add %v remove %v", add, remove)
	}
	if add, remove := Diff(next, next); add != nil || remove != nil {
		t.Errorf("no-op diff: %v %v", add, remove)
	}
}

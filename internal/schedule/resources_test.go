package schedule

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

// TestRulesPlacement has rows for rules 13-16, in TestRules' format; a
// row may set the strategy (rule 14) and ask for verbose output.
func TestRulesPlacement(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		machines []string
		units    []string
		current  []string
		verbose  bool
		want     string
	}{
		{
			name:     "13 no overcommit: the third 400M unit does not fit a 1G machine",
			machines: []string{"m1 cap.mem=1G"},
			units:    []string{"a.service mem=400M", "b.service mem=400M", "c.service mem=400M"},
			verbose:  true,
			want: "m1: a.service b.service\nunplaced:\n" +
				"  c.service: no machine can run c.service: not enough memory (needs 400M, most free 224M on m1)\n" +
				"    m1: needs memory 400M; m1 has 224M free\n",
		},
		{
			name:     "13 exactly full is fine",
			machines: []string{"m1 cap.mem=1G cap.cpu=1"},
			units:    []string{"a.service mem=512M cpu=0.5", "b.service mem=512M cpu=50%"},
			want:     "m1: a.service b.service\n",
		},
		{
			name:     "13 a machine without capacity takes any size",
			machines: []string{"m1"},
			units:    []string{"a.service mem=1T cpu=1000"},
			want:     "m1: a.service\n",
		},
		{
			name:     "13 an unadvertised dimension is unlimited",
			machines: []string{"m1 cap.mem=1G"},
			units:    []string{"a.service mem=1G cpu=64"},
			want:     "m1: a.service\n",
		},
		{
			name:     "13 unsized units fit on a full machine",
			machines: []string{"m1 cap.mem=1G"},
			units:    []string{"a.service mem=1G", "b.service"},
			want:     "m1: a.service b.service\n",
		},
		{
			name:     "13 larger than every machine: unplaced with the reason",
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=2G"},
			units:    []string{"big.service mem=4G"},
			want:     "m1: -\nm2: -\nunplaced:\n  big.service: no machine can run big.service: memory 4G is more than any machine has (largest 2G on m2)\n",
		},
		{
			name:     "13 CPU shortfall named in CPUs",
			machines: []string{"m1 cap.cpu=2", "m2 cap.cpu=1.5"},
			units:    []string{"a.service cpu=1", "b.service cpu=1.75"},
			verbose:  true,
			want: "m1: a.service\nm2: -\nunplaced:\n" +
				"  b.service: no machine can run b.service: not enough CPU (needs 1.75, most free 1.5 on m2)\n" +
				"    m1: needs CPU 1.75; m1 has 1 CPU free\n" +
				"    m2: needs CPU 1.75; m2 has 1.5 CPU free\n",
		},
		{
			name:     "13 both dimensions short",
			machines: []string{"m1 cap.cpu=1 cap.mem=1G"},
			units:    []string{"a.service cpu=2 mem=2G"},
			verbose:  true,
			want: "m1: -\nunplaced:\n" +
				"  a.service: no machine can run a.service: memory 2G is more than any machine has (largest 1G on m1); CPU 2 is more than any machine has (largest 1 on m1)\n" +
				"    m1: needs memory 2G and CPU 2; m1 has 1G and 1 CPU free\n",
		},
		{
			name:     "13 sizes skip full machines under spread",
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=1G"},
			units:    []string{"a.service mem=900M", "b.service", "c.service mem=500M"},
			want:     "m1: a.service\nm2: b.service c.service\n",
		},
		{
			name:     "13 sticky unit stays while it fits",
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=1G"},
			units:    []string{"a.service mem=400M", "b.service mem=400M"},
			current:  []string{"a.service=m1", "b.service=m1"},
			want:     "m1: a.service b.service\nm2: -\n",
		},
		{
			name:     "13 capacity shrinks: the first in order stays, the rest move",
			machines: []string{"m1 cap.mem=500M", "m2 cap.mem=1G"},
			units:    []string{"a.service mem=400M", "b.service mem=400M"},
			current:  []string{"a.service=m1", "b.service=m1"},
			want:     "m1: a.service\nm2: b.service\n",
		},
		{
			name:     "13 sticky unit that no longer fits anywhere is unplaced",
			machines: []string{"m1 cap.mem=300M"},
			units:    []string{"a.service mem=400M"},
			current:  []string{"a.service=m1"},
			want:     "m1: -\nunplaced:\n  a.service: no machine can run a.service: memory 400M is more than any machine has (largest 300M on m1)\n",
		},
		{
			name:     "13 global units reserve first and skip machines without room",
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=2G"},
			units:    []string{"g1.service global mem=600M", "g2.service global mem=600M", "a.service mem=500M"},
			want:     "m1: g1.service\nm2: a.service g1.service g2.service\n",
		},
		{
			name:     "13 global unit fitting nowhere has a reason",
			machines: []string{"m1 cap.mem=1G"},
			units:    []string{"g.service global mem=2G", "a.service mem=1G"},
			verbose:  true,
			want: "m1: a.service\nunplaced:\n" +
				"  g.service: no machine can run g.service: memory 2G is more than any machine has (largest 1G on m1)\n" +
				"    m1: needs memory 2G; m1 has 1G free\n",
		},
		{
			name:     "13 Replaces frees the displaced reservation",
			machines: []string{"m1 cap.mem=1G"},
			units:    []string{"old.service mem=800M", "new.service mem=800M replaces=old.service machineid=m1"},
			current:  []string{"old.service=m1"},
			want:     "m1: new.service\nunplaced:\n  old.service: no machine can run old.service: replaced by new.service on m1 (Replaces)\n",
		},
		{
			name:     "13 draining machine with room is named last",
			machines: []string{"m1 cap.mem=1G draining=true", "m2 cap.mem=100M"},
			units:    []string{"a.service mem=500M"},
			want:     "m1: -\nm2: -\nunplaced:\n  a.service: no machine can run a.service: m1 is draining\n",
		},
		{
			name:     "14 binpack fills the fullest machine that fits",
			strategy: StrategyBinpack,
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=1G", "m3 cap.mem=1G"},
			units:    []string{"a.service mem=500M", "b.service mem=500M", "c.service mem=500M", "d.service mem=100M"},
			want:     "m1: a.service b.service\nm2: c.service d.service\nm3: -\n",
		},
		{
			name:     "14 binpack ties on memory go to less free CPU",
			strategy: StrategyBinpack,
			machines: []string{"m1 cap.mem=1G cap.cpu=4", "m2 cap.mem=1G cap.cpu=2"},
			units:    []string{"a.service mem=100M"},
			want:     "m1: -\nm2: a.service\n",
		},
		{
			name:     "14 binpack: a machine without capacity is the emptiest",
			strategy: StrategyBinpack,
			machines: []string{"m1", "m2 cap.mem=64G"},
			units:    []string{"a.service", "b.service mem=1G"},
			want:     "m1: -\nm2: a.service b.service\n",
		},
		{
			name:     "14 binpack respects sticky placements",
			strategy: StrategyBinpack,
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=1G"},
			units:    []string{"a.service mem=100M", "b.service mem=100M"},
			current:  []string{"a.service=m1", "b.service=m2"},
			want:     "m1: a.service\nm2: b.service\n",
		},
		{
			name:     "14 unknown strategy is spread",
			strategy: "fill",
			machines: []string{"m1 cap.mem=1G", "m2 cap.mem=1G"},
			units:    []string{"a.service mem=100M", "b.service mem=100M"},
			want:     "m1: a.service\nm2: b.service\n",
		},
		{
			name:     "15 != matches other values and a missing key",
			machines: []string{"m1 disk=ssd", "m2 disk=hdd", "m3"},
			units:    []string{"x.service metadata=disk!=ssd", "y.service metadata=disk!=ssd"},
			want:     "m1: -\nm2: x.service\nm3: y.service\n",
		},
		{
			name:     "15 ordering operators need the key",
			machines: []string{"m1", "m2 cores=8"},
			units:    []string{"a.service metadata=cores>=8", "b.service metadata=cores<100"},
			want:     "m1: -\nm2: a.service b.service\n",
		},
		{
			name:     "15 numbers compare as numbers",
			machines: []string{"m1 cores=9", "m2 cores=10"},
			units:    []string{"a.service metadata=cores>9.5", "b.service metadata=cores<=09"},
			want:     "m1: b.service\nm2: a.service\n",
		},
		{
			name:     "15 versions compare segment by segment",
			machines: []string{"m1 v=1.2.10", "m2 v=1.10"},
			units:    []string{"a.service metadata=v>=1.3.0", "b.service metadata=v<1.2.9"},
			want:     "m1: -\nm2: a.service\nunplaced:\n  b.service: no machine has metadata v<1.2.9 (MachineMetadata)\n",
		},
		{
			name:     "15 1.2 and 1.10 are numbers; 1.2.0 makes it versions",
			machines: []string{"m1 v=1.10"},
			units:    []string{"num.service metadata=v>=1.2", "ver.service metadata=v>=1.2.0"},
			want:     "m1: ver.service\nunplaced:\n  num.service: no machine has metadata v>=1.2 (MachineMetadata)\n",
		},
		{
			name:     "15 incomparable values do not match",
			machines: []string{"m1 cores=many"},
			units:    []string{"a.service metadata=cores>1"},
			verbose:  true,
			want: "m1: -\nunplaced:\n  a.service: no machine has metadata cores>1 (MachineMetadata)\n" +
				"    m1: metadata cores>1 not met: machine has cores=many (not comparable with 1)\n",
		},
		{
			name:     "15 operators and = together (AND)",
			machines: []string{"m1 role=web cores=4", "m2 role=web cores=16", "m3 role=db cores=32"},
			units:    []string{"a.service metadata=role=web metadata=cores>4"},
			want:     "m1: -\nm2: a.service\nm3: -\n",
		},
		{
			name:     "15 global unit with an operator",
			machines: []string{"m1 disk=ssd", "m2 disk=hdd", "m3"},
			units:    []string{"g.service global metadata=disk!=hdd"},
			want:     "m1: g.service\nm2: -\nm3: g.service\n",
		},
		{
			name:     "16 MachineOf glob: on a machine with a match",
			machines: []string{"m1", "m2", "m3"},
			units:    []string{"db@1.service machineid=m2", "side.service machineof=db@*.service"},
			want:     "m1: -\nm2: db@1.service side.service\nm3: -\n",
		},
		{
			name:     "16 MachineOf glob: least loaded machine with a match",
			machines: []string{"m1", "m2"},
			units:    []string{"db@1.service machineid=m1", "db@2.service machineid=m2", "x.service machineid=m1", "side.service machineof=db@*.service"},
			want:     "m1: db@1.service x.service\nm2: db@2.service side.service\n",
		},
		{
			name:     "16 MachineOf glob matching no unit",
			machines: []string{"m1"},
			units:    []string{"side.service machineof=db@*.service"},
			want:     "m1: -\nunplaced:\n  side.service: no unit matching db@*.service (MachineOf) is scheduled\n",
		},
		{
			name:     "16 MachineOf glob matching a global unit",
			machines: []string{"m1 role=a", "m2 role=b"},
			units:    []string{"agent@x.service global metadata=role=b", "side.service machineof=agent@*.service"},
			want:     "m1: -\nm2: agent@x.service side.service\n",
		},
		{
			name:     "16 MachineOf glob: the unit itself does not count",
			machines: []string{"m1"},
			units:    []string{"web@1.service machineof=web@*.service"},
			want:     "m1: -\nunplaced:\n  web@1.service: no unit matching web@*.service (MachineOf) is scheduled\n",
		},
		{
			name:     "16 MachineOf glob with a literal peer: both must hold",
			machines: []string{"m1", "m2"},
			units:    []string{"db@1.service machineid=m1", "db@2.service machineid=m2", "cache.service machineid=m2", "s.service machineof=db@*.service machineof=cache.service"},
			want:     "m1: db@1.service\nm2: cache.service db@2.service s.service\n",
		},
		{
			name:     "16 MachineOf glob: a follower ordered after its matches whatever the names",
			machines: []string{"m1", "m2"},
			units:    []string{"a.service machineof=z@*.service", "z@1.service"},
			want:     "m1: a.service z@1.service\nm2: -\n",
		},
		{
			name:     "16 MachineOf glob cycle",
			machines: []string{"m1"},
			units:    []string{"a@1.service machineof=a@*.service", "a@2.service machineof=a@*.service"},
			want:     "m1: -\nunplaced:\n  a@1.service: MachineOf cycle among a@1.service, a@2.service\n  a@2.service: MachineOf cycle among a@1.service, a@2.service\n",
		},
		{
			name:     "16 Replaces keeps a glob follower while another match stays",
			machines: []string{"m1"},
			units:    []string{"db@1.service", "db@2.service", "side.service machineof=db@*.service", "new.service replaces=db@1.service"},
			current:  []string{"db@1.service=m1", "db@2.service=m1", "side.service=m1"},
			want:     "m1: db@2.service new.service side.service\nunplaced:\n  db@1.service: no machine can run db@1.service: replaced by new.service on m1 (Replaces)\n",
		},
		{
			name:     "16 Replaces takes a glob follower along with its last match",
			machines: []string{"m1", "m2"},
			units:    []string{"db@1.service machineid=m1", "side.service machineof=db@*.service", "new.service replaces=db@1.service machineid=m1"},
			current:  []string{"db@1.service=m1", "side.service=m1"},
			want: "m1: new.service\nm2: -\nunplaced:\n  db@1.service: no machine can run db@1.service: replaced by new.service on m1 (Replaces)\n" +
				"  side.service: no unit matching db@*.service (MachineOf) is scheduled\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, ids := build(t, tt.machines, tt.units, tt.current)
			snap.Strategy = tt.strategy
			res := Schedule(snap)
			got := formatResult(res, ids, tt.verbose)
			if got != tt.want {
				t.Errorf("got\n%swant\n%s", got, tt.want)
			}
			newOracle(snap, res).check(t, res)
			again := snap
			again.Current = res.Assign
			if res2 := Schedule(again); !reflect.DeepEqual(res, res2) {
				t.Errorf("rule 9: not a fixpoint:\n%v\n%v", res.Assign, res2.Assign)
			}
		})
	}
}

func TestCompareValues(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"8", "8", 0, true}, {"8", "16", -1, true}, {"16", "8", 1, true}, {"0.5", ".5", 0, false},
		{"-1", "0", -1, true}, {"-0", "0", 0, true}, {"-2", "-10", 1, true}, {"1.5", "1.50", 0, true},
		{"1.2", "1.10", 1, true}, {"1.2.10", "1.10", -1, true}, {"1.2", "1.2.0", 0, true},
		{"2.0", "10.0.0", -1, true}, {"99999999999999999999", "100000000000000000000", -1, true},
		{"007", "7", 0, true}, {"many", "1", 0, false}, {"1.2.3", "-1", 0, false}, {"", "1", 0, false},
	} {
		got, ok := compareValues(tt.a, tt.b)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("rule 15: compareValues(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

// TestResourcesJSON: the new fields are omitted when zero, so machines
// and units that do not use them serialize as before.
func TestResourcesJSON(t *testing.T) {
	for _, v := range []any{fleet.Machine{ID: "m1"}, fleet.Requirements{}} {
		b, err := json.Marshal(v)
		if err != nil || strings.Contains(string(b), "capacity") || strings.Contains(string(b), "resources") || strings.Contains(string(b), "metadataOps") {
			t.Errorf("%T: %s %v", v, b, err)
		}
	}
	b, _ := json.Marshal(fleet.Machine{ID: "m1", Capacity: fleet.Resources{CPUMilli: 2000, MemoryBytes: 1 << 30}})
	if want := `{"id":"m1","capacity":{"cpuMilli":2000,"memoryBytes":1073741824}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	b, _ = json.Marshal(fleet.Requirements{Resources: fleet.Resources{MemoryBytes: 5},
		MetadataOps: []fleet.MetadataCond{{Key: "disk", Op: "!=", Value: "hdd"}}})
	if want := `{"metadataOps":[{"key":"disk","op":"!=","value":"hdd"}],"resources":{"memoryBytes":5}}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestResourcesZeroIsUnknown(t *testing.T) {
	r := fleet.Resources{}
	if nonNegative(fleet.Resources{CPUMilli: -5, MemoryBytes: -1}) != r {
		t.Error("negative resources are not zero")
	}
	if f := freeOf(r, fleet.Resources{MemoryBytes: 5}); f.MemoryBytes != unlimited || f.CPUMilli != unlimited {
		t.Errorf("free of an unknown capacity = %+v", f)
	}
}

// SurgeMachines (rule 13): a surge copy needs room for its reservation.
func TestSurgeNeedsRoom(t *testing.T) {
	snap, _ := build(t, []string{"m1 cap.mem=1G", "m2 cap.mem=1G"},
		[]string{"a.service mem=600M machineid=m1", "b.service mem=600M machineid=m2"}, nil)
	if got := SurgeMachines(snap, []string{"a.service"}); len(got) != 0 {
		t.Errorf("surge without room: %v", got)
	}
	snap.Machines = append(snap.Machines, fleet.Machine{ID: "m3", Capacity: fleet.Resources{MemoryBytes: 1 << 30}})
	for i := range snap.Units { // a.service may sit anywhere in Units
		if snap.Units[i].Name == "a.service" {
			snap.Units[i].Req.MachineID = ""
		}
	}
	if got := SurgeMachines(snap, []string{"a.service"}); got["a.service"] != "m3" {
		t.Errorf("surge: %v, want a.service on m3", got)
	}
}

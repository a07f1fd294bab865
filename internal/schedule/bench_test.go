package schedule

import (
	"fmt"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

// benchCluster builds m machines (metadata region=r0..r3) and n units: a
// mix of plain units, 10% with MachineMetadata, and a few global units.
func benchCluster(m, n int) Snapshot {
	var s Snapshot
	for i := range m {
		s.Machines = append(s.Machines, fleet.Machine{
			ID:       fmt.Sprintf("%08x-%04d", i*2654435761%(1<<32), i),
			Metadata: map[string]string{"region": fmt.Sprintf("r%d", i%4)},
		})
	}
	for i := range n {
		u := Unit{Name: fmt.Sprintf("app%d@%d.service", i%50, i), Desired: fleet.JobStateLaunched}
		if i%10 == 0 {
			u.Req.Metadata = map[string][]string{"region": {fmt.Sprintf("r%d", i%4)}}
		}
		s.Units = append(s.Units, u)
	}
	for i := range 3 {
		s.Units = append(s.Units, Unit{Name: fmt.Sprintf("global%d.service", i), Desired: fleet.JobStateLaunched,
			Req: fleet.Requirements{Global: true}})
	}
	return s
}

func benchSchedule(b *testing.B, s Snapshot) Result {
	b.ReportAllocs()
	var res Result
	for b.Loop() {
		res = Schedule(s)
	}
	return res
}

// BenchmarkSchedule1000x10000 places 10,000 units on 1,000 machines from
// scratch.
func BenchmarkSchedule1000x10000(b *testing.B) {
	s := benchCluster(1000, 10000)
	if res := benchSchedule(b, s); len(res.Reasons) != 0 {
		b.Fatalf("%d unplaced", len(res.Reasons))
	}
}

// BenchmarkSchedule1000x10000Sticky re-runs on the result: everything stays.
func BenchmarkSchedule1000x10000Sticky(b *testing.B) {
	s := benchCluster(1000, 10000)
	s.Current = Schedule(s).Assign
	benchSchedule(b, s)
}

// BenchmarkSchedule1000x10000MachineLoss: 10 machines died since the last
// round; their units are re-placed, the rest stays.
func BenchmarkSchedule1000x10000MachineLoss(b *testing.B) {
	s := benchCluster(1000, 10000)
	s.Current = Schedule(s).Assign
	s.Machines = s.Machines[10:]
	benchSchedule(b, s)
}

// BenchmarkSchedule1000x10000Drain: 10 machines are draining (rule 12);
// their units are re-placed, the rest stays. Compare with MachineLoss: the
// drain costs what the loss of those machines does.
func BenchmarkSchedule1000x10000Drain(b *testing.B) {
	s := benchCluster(1000, 10000)
	s.Current = Schedule(s).Assign
	for i := range 10 {
		m := &s.Machines[i]
		m.Metadata = map[string]string{"region": m.Metadata["region"], fleet.DrainMetadataKey: "true"}
	}
	if res := benchSchedule(b, s); len(res.Reasons) != 0 {
		b.Fatalf("%d unplaced", len(res.Reasons))
	}
}

// conflictsCluster: 100 machines, 1,000 units from 20 templates whose
// instances conflict with each other (Conflicts=tplN@*.service), some
// templates more numerous than the machines, plus cross-template
// conflicts, so many placements are rejected and some units stay unplaced.
func conflictsCluster(m, n int) Snapshot {
	var s Snapshot
	for i := range m {
		s.Machines = append(s.Machines, fleet.Machine{ID: fmt.Sprintf("m%05d", i)})
	}
	for i := range n {
		tpl := i % 20
		if i%7 == 0 {
			tpl = 0 // template 0 has more instances than machines
		}
		u := Unit{Name: fmt.Sprintf("tpl%d@%d.service", tpl, i), Desired: fleet.JobStateLaunched,
			Req: fleet.Requirements{Conflicts: []string{fmt.Sprintf("tpl%d@*.service", tpl)}}}
		if tpl%5 == 1 {
			u.Req.Conflicts = append(u.Req.Conflicts, fmt.Sprintf("tpl%d@*.service", tpl+1))
		}
		s.Units = append(s.Units, u)
	}
	return s
}

func BenchmarkSchedule100x1000Conflicts(b *testing.B) {
	s := conflictsCluster(100, 1000)
	res := benchSchedule(b, s)
	b.ReportMetric(float64(len(res.Reasons)), "unplaced")
}

func BenchmarkSchedule1000x10000Conflicts(b *testing.B) {
	s := conflictsCluster(1000, 10000)
	res := benchSchedule(b, s)
	b.ReportMetric(float64(len(res.Reasons)), "unplaced")
}

// TestScaleLarge runs 5,000 machines x 100,000 units once (skipped with
// -short): it must finish and place everything.
func TestScaleLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	s := benchCluster(5000, 100000)
	res := Schedule(s)
	if len(res.Reasons) != 0 || len(res.Assign) != 100003 {
		t.Fatalf("%d placed, %d unplaced", len(res.Assign), len(res.Reasons))
	}
	s.Current = res.Assign
	s.Machines = s.Machines[50:]
	if res := Schedule(s); len(res.Reasons) != 0 {
		t.Fatalf("%d unplaced after machine loss", len(res.Reasons))
	}
}

// sizedCluster is benchCluster with capacities (8 CPUs, 8G per machine)
// and reservations on every unit (100M-800M, 0.1-0.8 CPU; the global
// units 256M each): about 60% of the memory is reserved (rule 13).
func sizedCluster(m, n int) Snapshot {
	s := benchCluster(m, n)
	for i := range s.Machines {
		s.Machines[i].Capacity = fleet.Resources{CPUMilli: 8000, MemoryBytes: 8 << 30}
	}
	for i := range s.Units {
		u := &s.Units[i]
		if u.Req.Global {
			u.Req.Resources = fleet.Resources{MemoryBytes: 256 << 20}
			continue
		}
		u.Req.Resources = fleet.Resources{CPUMilli: int64(100 * (1 + i%8)), MemoryBytes: int64(1+i%8) * 100 << 20}
	}
	return s
}

// BenchmarkSchedule1000x10000Sized places 10,000 sized units on 1,000
// machines with capacities (spread).
func BenchmarkSchedule1000x10000Sized(b *testing.B) {
	s := sizedCluster(1000, 10000)
	if res := benchSchedule(b, s); len(res.Reasons) != 0 {
		b.Fatalf("%d unplaced", len(res.Reasons))
	}
}

// BenchmarkSchedule1000x10000SizedBinpack: the same with the binpack
// strategy (rule 14).
func BenchmarkSchedule1000x10000SizedBinpack(b *testing.B) {
	s := sizedCluster(1000, 10000)
	s.Strategy = StrategyBinpack
	if res := benchSchedule(b, s); len(res.Reasons) != 0 {
		b.Fatalf("%d unplaced", len(res.Reasons))
	}
}

// BenchmarkSchedule1000x10000SizedSticky re-runs the sized cluster on its
// result.
func BenchmarkSchedule1000x10000SizedSticky(b *testing.B) {
	s := sizedCluster(1000, 10000)
	s.Current = Schedule(s).Assign
	benchSchedule(b, s)
}

package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// benchCluster fills a store the size of fleet-bench scale: 1,000 machines
// (with metadata), 10,000 units, each scheduled on one machine.
func benchCluster(b *testing.B) (*store.Store, *store.Leadership) {
	b.Helper()
	ctx := b.Context()
	_, eps := etcdtest.NewServer(b)
	s := store.New(etcdkv.New(etcdtest.NewClient(b, eps)), prefix)
	l, err := s.Campaign(ctx, "m0000", 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Resign(context.Background()) })
	const machines, units = 1000, 10000
	for i := range machines {
		id := fmt.Sprintf("m%04d", i)
		m := fleet.Machine{ID: id, PublicIP: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Metadata: map[string]string{"region": fmt.Sprint(i % 3)}}
		if _, err := s.Register(ctx, m, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	us := make([]fleet.Unit, units)
	var ch store.Changes
	for i := range us {
		us[i] = fleet.Unit{Name: fmt.Sprintf("u%05d.service", i), Hash: fmt.Sprintf("h%d", i), DesiredState: fleet.JobStateLaunched,
			Options: []fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/sleep 1000"}}}
		ch.Put = append(ch.Put, store.ScheduleEntry{Unit: us[i].Name, Machine: fmt.Sprintf("m%04d", i%machines), Hash: us[i].Hash, DesiredState: fleet.JobStateLaunched})
	}
	if _, err := s.CreateUnits(ctx, us); err != nil {
		b.Fatal(err)
	}
	if err := s.Apply(ctx, l, ch); err != nil {
		b.Fatal(err)
	}
	return s, l
}

// BenchmarkViewReload: Invalidate and Snapshot, as the engine's periodic
// round does.
func BenchmarkViewReload(b *testing.B) {
	s, _ := benchCluster(b)
	ctx := b.Context()
	v := s.NewView()
	defer v.Close()
	b.ReportAllocs()
	for b.Loop() {
		v.Invalidate()
		snap, err := v.Snapshot(ctx)
		if err != nil || len(snap.Units) != 10000 {
			b.Fatalf("%d units, %v", len(snap.Units), err)
		}
	}
}

// BenchmarkViewSnapshot: a Snapshot of the loaded view.
func BenchmarkViewSnapshot(b *testing.B) {
	s, _ := benchCluster(b)
	ctx := b.Context()
	v := s.NewView()
	defer v.Close()
	if _, err := v.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkViewFollow: 100 units change state in one transaction, and the
// view applies the events from its watch (per op: one batch of 100).
func BenchmarkViewFollow(b *testing.B) {
	s, _ := benchCluster(b)
	ctx := b.Context()
	v := s.NewView()
	defer v.Close()
	if _, err := v.Snapshot(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		us := make([]fleet.Unit, 100)
		for i := range us {
			us[i] = fleet.Unit{Name: fmt.Sprintf("new%06d-%03d.service", n, i), Hash: "h"}
		}
		if _, err := s.CreateUnits(ctx, us); err != nil {
			b.Fatal(err)
		}
		for {
			select {
			case <-v.Wake():
			case <-time.After(5 * time.Second):
				b.Fatal("no wake-up")
			}
			snap, err := v.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(snap.Units) == 10000+100*n {
				break
			}
		}
	}
}

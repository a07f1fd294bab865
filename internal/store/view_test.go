package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// The view follows units, machines and metadata through its watches, and
// the schedule and reasons through Applied: at every step it matches a
// fresh Snapshot.
func TestViewMatchesSnapshot(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	p1, err := s.Register(ctx, fleet.Machine{ID: "m1", Metadata: map[string]string{"a": "1"}}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close(ctx)
	if _, err := s.CreateUnit(ctx, fleet.Unit{Name: "a.service", Hash: "h1", DesiredState: fleet.JobStateLaunched}); err != nil {
		t.Fatal(err)
	}

	v := s.NewView()
	defer v.Close()
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	check := func(step string) {
		t.Helper()
		var got, want store.Snapshot
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			if got, err = v.Snapshot(vctx); err != nil {
				t.Fatalf("%s: view snapshot: %v", step, err)
			}
			if want, err = s.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			got.Rev, want.Rev = 0, 0
			if reflect.DeepEqual(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: view\n%+v\nwant\n%+v", step, got, want)
			}
			select {
			case <-v.Wake():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	check("initial")

	p2, err := s.Register(ctx, fleet.Machine{ID: "m2"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUnits(ctx, []fleet.Unit{{Name: "b.service", Hash: "h2"}, {Name: "c.service", Hash: "h3"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata(ctx, "m1", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata(ctx, "m2", "b", "2"); err != nil {
		t.Fatal(err)
	}
	check("machines, units and metadata added")

	ch := store.Changes{
		Put:        []store.ScheduleEntry{{Unit: "a.service", Machine: "m1", Hash: "h1", DesiredState: fleet.JobStateLaunched}},
		PutReasons: []fleet.Reason{{Unit: "b.service", Summary: "no"}},
	}
	if err := s.Apply(ctx, l, ch); err != nil {
		t.Fatal(err)
	}
	v.Applied(ch)
	check("applied")

	if err := s.DestroyUnit(ctx, "c.service"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMetadata(ctx, "m1", "a"); err != nil {
		t.Fatal(err)
	}
	if err := p2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ch = store.Changes{Delete: []store.ScheduleEntry{{Unit: "a.service", Machine: "m1"}}, DeleteReasons: []string{"b.service"}}
	if err := s.Apply(ctx, l, ch); err != nil {
		t.Fatal(err)
	}
	v.Applied(ch)
	check("deleted")

	// After Invalidate the view reads everything again.
	v.Invalidate()
	check("reloaded")
}

func TestUnitsByName(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	var us []fleet.Unit
	for _, n := range []string{"a.service", "b.service"} {
		us = append(us, fleet.Unit{Name: n, Hash: "h" + n, DesiredState: fleet.JobStateLaunched})
	}
	if n, err := s.CreateUnits(ctx, us); err != nil || n != 2 {
		t.Fatalf("CreateUnits = %d, %v", n, err)
	}
	// An existing unit in the batch: the rest are still created.
	if n, err := s.CreateUnits(ctx, []fleet.Unit{us[0], {Name: "c.service", Hash: "hc"}}); err != nil || n != 1 {
		t.Fatalf("CreateUnits with one existing = %d, %v; want 1", n, err)
	}
	got, err := s.UnitsByName(ctx, []string{"a.service", "c.service", "missing.service"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a.service"].Hash != "ha.service" || got["c.service"].Hash != "hc" || got["c.service"].DesiredState != fleet.JobStateInactive {
		t.Fatalf("UnitsByName = %+v", got)
	}
}

// The follower's copy of a machine's schedule tracks the leader's writes
// through its watch, and reads again after Invalidate.
func TestScheduleFollower(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	f := s.FollowSchedule("m1")
	defer f.Close()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	check := func(step string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := f.Entries(fctx)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := s.MachineSchedule(ctx, "m1")
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(got, want) || (len(got) == 0 && len(want) == 0) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: follower %+v; want %+v", step, got, want)
			}
			select {
			case <-f.Wake():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	check("empty")
	e := func(u, m string) store.ScheduleEntry {
		return store.ScheduleEntry{Unit: u, Machine: m, Hash: "h", DesiredState: fleet.JobStateLaunched}
	}
	if err := s.Apply(ctx, l, store.Changes{Put: []store.ScheduleEntry{e("a.service", "m1"), e("b.service", "m1"), e("c.service", "m2")}}); err != nil {
		t.Fatal(err)
	}
	check("two placed here")
	b := e("b.service", "m1")
	b.DesiredState = fleet.JobStateLoaded
	if err := s.Apply(ctx, l, store.Changes{Put: []store.ScheduleEntry{b}, Delete: []store.ScheduleEntry{e("a.service", "m1")}}); err != nil {
		t.Fatal(err)
	}
	check("one moved, one changed")
	f.Invalidate()
	check("reloaded")
}

// An undecodable entry under the follower's prefix makes Entries fail, as
// MachineSchedule does, whether it was read or arrived through the watch,
// and every Entries reads again until it is fixed.
func TestScheduleFollowerBadEntry(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	f := s.FollowSchedule("m1")
	defer f.Close()
	if es, err := f.Entries(ctx); err != nil || len(es) != 0 {
		t.Fatalf("Entries = %v, %v", es, err)
	}
	key := s.Layout().Schedule("m1", "a.service")
	if _, err := s.KV().Put(ctx, key, "not json", etcdkv.NoLease); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "Entries fails on the bad entry", func() bool {
		_, err := f.Entries(ctx)
		return err != nil
	})
	if _, err := f.Entries(ctx); err == nil {
		t.Fatal("Entries succeeded a second time with the bad entry in place")
	}
	if _, err := s.KV().Put(ctx, key, `{"hash":"h","desiredState":"launched"}`, etcdkv.NoLease); err != nil {
		t.Fatal(err)
	}
	es, err := f.Entries(ctx)
	if err != nil || len(es) != 1 || es[0].Hash != "h" || es[0].Machine != "m1" {
		t.Fatalf("Entries after the fix = %+v, %v", es, err)
	}
	// Still followed by the watch after the fix.
	if _, _, err := s.KV().Delete(ctx, key, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the deletion is followed", func() bool {
		es, err := f.Entries(ctx)
		return err == nil && len(es) == 0
	})
}

package store_test

import (
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/store"
)

// Job records are written per machine without a lease, read per unit, per
// machine and in snapshots (the store's and the engine's view), and
// deleted per unit.
func TestJobRecords(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	fin := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	recs := []store.JobRecord{
		{Unit: "j.service", Machine: "m2", Result: store.JobFailed, UnitResult: "exit-code", Hash: "h1", Finished: fin},
		{Unit: "j.service", Machine: "m1", Result: store.JobSucceeded, UnitResult: "success", Hash: "h1", Finished: fin},
		{Unit: "k.service", Machine: "m1", Result: store.JobSucceeded, UnitResult: "success", Hash: "h2", Finished: fin},
	}
	view := s.NewView()
	defer view.Close()
	if _, err := view.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := s.PutJob(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Jobs(ctx, "j.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Machine != "m1" || got[1].Machine != "m2" || !got[0].Succeeded("h1") || got[1].Succeeded("h1") || !got[0].Finished.Equal(fin) {
		t.Fatalf("Jobs(j) = %+v", got)
	}
	if got[0].Succeeded("h2") {
		t.Error("a success of h1 counts for h2")
	}
	mine, err := s.MachineJobs(ctx, "m1", []string{"j.service", "k.service", "x.service"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 2 || mine["k.service"].Hash != "h2" || mine["j.service"].Result != store.JobSucceeded {
		t.Fatalf("MachineJobs(m1) = %+v", mine)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Jobs["j.service"]) != 2 || len(snap.Jobs["k.service"]) != 1 {
		t.Fatalf("Snapshot.Jobs = %+v", snap.Jobs)
	}
	// The view follows jobs/ by watch.
	waitFor(t, func() bool {
		vs, err := view.Snapshot(ctx)
		return err == nil && len(vs.Jobs["j.service"]) == 2 && len(vs.Jobs["k.service"]) == 1 && vs.Jobs["j.service"][0].Machine == "m1"
	})
	n, err := s.DeleteJobs(ctx, "j.service")
	if err != nil || n != 2 {
		t.Fatalf("DeleteJobs = %d, %v", n, err)
	}
	if got, _ := s.Jobs(ctx, "j.service"); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
	waitFor(t, func() bool {
		vs, err := view.Snapshot(ctx)
		return err == nil && len(vs.Jobs["j.service"]) == 0 && len(vs.Jobs["k.service"]) == 1
	})
	all, err := s.AllJobs(ctx)
	if err != nil || len(all) != 1 || all[0].Unit != "k.service" {
		t.Fatalf("AllJobs = %+v, %v", all, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

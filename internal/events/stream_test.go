package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/events"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

const prefix = "/test/fleet/"

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// next reads one event or fails after a while.
func next(t *testing.T, ch <-chan fleet.Event) fleet.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("stream closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return fleet.Event{}
}

func TestStreamAgainstRealStore(t *testing.T) {
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), prefix)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// A change before the stream starts is not seen from "now" ...
	if _, err := st.CreateUnit(ctx, fleet.Unit{Name: "old.service", Hash: "h0", DesiredState: fleet.JobStateLoaded}); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	startRev := resp.Header.Revision

	sctx, scancel := context.WithCancel(ctx)
	ch := events.Stream(sctx, etcdkv.New(cli), prefix, 0)
	time.Sleep(200 * time.Millisecond) // let the watch start

	pr, err := st.Register(ctx, fleet.Machine{ID: "m1aaaaaaaaaaaaaa", PublicIP: "10.0.0.1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventMachineJoined || e.Machine != "m1aaaaaaaaaaaaaa" || e.IP != "10.0.0.1" || e.Time.IsZero() {
		t.Fatalf("got %+v, want machine.joined", e)
	}
	if _, err := st.CreateUnit(ctx, fleet.Unit{Name: "web.service", Hash: "h1", DesiredState: fleet.JobStateLaunched}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitSubmitted || e.Unit != "web.service" || e.State != "launched" {
		t.Fatalf("got %+v, want unit.submitted", e)
	}
	// Scheduled on m1, then moved to m2 in one transaction.
	k1, k2 := prefix+"schedule/m1aaaaaaaaaaaaaa/web.service", prefix+"schedule/m2bbbbbbbbbbbbbb/web.service"
	val := mustJSON(map[string]string{"hash": "h1", "desiredState": "launched"})
	if _, err := cli.Put(ctx, k1, val); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitScheduled || e.Machine != "m1aaaaaaaaaaaaaa" {
		t.Fatalf("got %+v, want unit.scheduled on m1", e)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpDelete(k1), clientv3.OpPut(k2, val)).Commit(); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitRescheduled || e.From != "m1aaaaaaaaaaaaaa" || e.Machine != "m2bbbbbbbbbbbbbb" {
		t.Fatalf("got %+v, want unit.rescheduled m1 → m2", e)
	}
	// Adjacent revisions merge too.
	k3 := prefix + "schedule/m3cccccccccccccc/web.service"
	if _, err := cli.Delete(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, k3, val); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitRescheduled || e.From != "m2bbbbbbbbbbbbbb" || e.Machine != "m3cccccccccccccc" {
		t.Fatalf("got %+v, want unit.rescheduled m2 → m3", e)
	}
	// A lone unscheduled event comes out after the hold-back.
	t0 := time.Now()
	if _, err := cli.Delete(ctx, k3); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitUnscheduled || e.Machine != "m3cccccccccccccc" {
		t.Fatalf("got %+v, want unit.unscheduled", e)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("unscheduled held back %v", d)
	}
	state := fleet.UnitState{Name: "web.service", MachineID: "m1aaaaaaaaaaaaaa", ActiveState: "active", SubState: "running"}
	if err := st.PutUnitStates(ctx, pr.Lease(), []fleet.UnitState{state}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitStarted || e.State != "active/running" {
		t.Fatalf("got %+v, want unit.started", e)
	}
	if err := st.SetDesiredState(ctx, "web.service", fleet.JobStateLoaded); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitDesired || e.State != "loaded" {
		t.Fatalf("got %+v, want unit.desired", e)
	}
	state.ActiveState, state.SubState = "inactive", "dead"
	if err := st.PutUnitStates(ctx, pr.Lease(), []fleet.UnitState{state}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitStopped {
		t.Fatalf("got %+v, want unit.stopped", e)
	}
	if err := st.DestroyUnit(ctx, "web.service"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Type != fleet.EventUnitDestroyed {
		t.Fatalf("got %+v, want unit.destroyed", e)
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e := next(t, ch)
	if e.Type != fleet.EventMachineLost || e.IP != "10.0.0.1" {
		t.Fatalf("got %+v, want machine.lost", e)
	}
	lastRev := e.Rev
	scancel()
	for range ch {
	}

	// From a revision: the history is replayed, including the unit made
	// before the first stream started.
	ch = events.Stream(ctx, etcdkv.New(cli), prefix, startRev+1)
	first := next(t, ch)
	if first.Type != fleet.EventMachineJoined {
		t.Fatalf("replay starts with %+v, want machine.joined", first)
	}
	for e := first; e.Rev < lastRev; e = next(t, ch) {
	}
	ch = events.Stream(ctx, etcdkv.New(cli), prefix, startRev)
	if e := next(t, ch); e.Type != fleet.EventUnitSubmitted || e.Unit != "old.service" {
		t.Fatalf("replay from before: %+v", e)
	}
}

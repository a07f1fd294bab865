package engine

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/schedule"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

func unit(t *testing.T, name, body string, desired fleet.JobState) fleet.Unit {
	t.Helper()
	opts, err := unitfile.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Unit{Name: name, Options: opts, Hash: unitfile.Hash(opts), DesiredState: desired}
}

func TestChangesIsMinimal(t *testing.T) {
	snap := store.Snapshot{
		Schedule: []store.ScheduleEntry{
			{Unit: "a.service", Machine: "m1", Hash: "h1", DesiredState: fleet.JobStateLaunched},
			{Unit: "b.service", Machine: "m1", Hash: "h2", DesiredState: fleet.JobStateLaunched},
			{Unit: "gone.service", Machine: "m2", Hash: "h3", DesiredState: fleet.JobStateLaunched},
		},
		Reasons: map[string]fleet.Reason{
			"stale.service": {Unit: "stale.service", Summary: "old"},
			"same.service":  {Unit: "same.service", Summary: "still"},
		},
	}
	units := map[string]fleet.Unit{
		"a.service": {Name: "a.service", Hash: "h1", DesiredState: fleet.JobStateLaunched},
		"b.service": {Name: "b.service", Hash: "h2", DesiredState: fleet.JobStateLoaded}, // desired changed
		"c.service": {Name: "c.service", Hash: "h4", DesiredState: fleet.JobStateLaunched},
	}
	res := schedule.Result{
		Assign: map[string][]string{"a.service": {"m1"}, "b.service": {"m1"}, "c.service": {"m2"}},
		Reasons: map[string]fleet.Reason{
			"same.service": {Unit: "same.service", Summary: "still"},
			"new.service":  {Unit: "new.service", Summary: "no machine"},
		},
	}
	ch := Changes(snap, units, res)
	if len(ch.Put) != 2 || ch.Put[0].Unit != "b.service" || ch.Put[0].DesiredState != fleet.JobStateLoaded || ch.Put[1].Unit != "c.service" {
		t.Errorf("Put = %+v", ch.Put)
	}
	if len(ch.Delete) != 1 || ch.Delete[0].Unit != "gone.service" {
		t.Errorf("Delete = %+v", ch.Delete)
	}
	if len(ch.PutReasons) != 1 || ch.PutReasons[0].Unit != "new.service" {
		t.Errorf("PutReasons = %+v", ch.PutReasons)
	}
	if len(ch.DeleteReasons) != 1 || ch.DeleteReasons[0] != "stale.service" {
		t.Errorf("DeleteReasons = %+v", ch.DeleteReasons)
	}
	// Applying the result and diffing again gives nothing.
	again := store.Snapshot{Reasons: res.Reasons}
	for u, ms := range res.Assign {
		for _, m := range ms {
			again.Schedule = append(again.Schedule, store.ScheduleEntry{Unit: u, Machine: m, Hash: units[u].Hash, DesiredState: units[u].DesiredState})
		}
	}
	if ch := Changes(again, units, res); !ch.Empty() {
		t.Errorf("second diff not empty: %+v", ch)
	}
}

// Against a real etcd: units are placed, reasons recorded, a second round
// writes nothing, and a deposed leader cannot write.
func TestReconcileAgainstEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), "/engine-test/")
	for _, id := range []string{"m1", "m2"} {
		p, err := st.Register(ctx, fleet.Machine{ID: id}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
	}
	body := "[Service]\nExecStart=/bin/true\n[X-Fleet]\nConflicts=web@*.service\n"
	for _, n := range []string{"web@1.service", "web@2.service", "web@3.service"} {
		if _, err := st.CreateUnit(ctx, unit(t, n, body, fleet.JobStateLaunched)); err != nil {
			t.Fatal(err)
		}
	}
	rounds := 0
	e := New(Config{Store: st, MachineID: "m1", OnReconcile: func(s Stats) { rounds++ }})
	lead, err := st.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reconcile(ctx, lead); err != nil {
		t.Fatal(err)
	}
	sched, err := st.Schedule(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sched) != 2 || sched[0].Machine == sched[1].Machine {
		t.Fatalf("schedule = %+v, want two units on two machines", sched)
	}
	reasons, err := st.Reasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := reasons["web@3.service"]; !ok || r.Summary == "" {
		t.Fatalf("web@3.service has no reason: %+v", reasons)
	}
	rev := func() int64 {
		r, err := cli.Get(ctx, "/engine-test/")
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	before := rev()
	if err := e.Reconcile(ctx, lead); err != nil {
		t.Fatal(err)
	}
	if after := rev(); after != before {
		t.Errorf("second reconcile wrote: revision %d -> %d", before, after)
	}
	// Deposed: resign, then a new unit must not be scheduled by us.
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUnit(ctx, unit(t, "other.service", "[Service]\nExecStart=/bin/true\n", fleet.JobStateLaunched)); err != nil {
		t.Fatal(err)
	}
	if err := e.Reconcile(ctx, lead); !errors.Is(err, store.ErrNotLeader) {
		t.Errorf("reconcile after resign: %v, want ErrNotLeader", err)
	}
	if ps, _ := st.Placements(ctx, "other.service"); len(ps) != 0 {
		t.Errorf("deposed leader placed other.service on %v", ps)
	}
	if rounds != 2 {
		t.Errorf("OnReconcile called %d times, want 2", rounds)
	}
}

// The Run loop reacts to changes: a unit created after the engine starts is
// placed without waiting for the periodic tick.
func TestRunPlacesNewUnits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), "/engine-run/")
	p, err := st.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = New(Config{Store: st, MachineID: "m1", Interval: time.Hour}).Run(runCtx)
	}()
	defer func() { stop(); <-done }()
	if _, err := st.CreateUnit(ctx, unit(t, "a.service", "[Service]\nExecStart=/bin/true\n", fleet.JobStateLaunched)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ps, _ := st.Placements(ctx, "a.service"); len(ps) == 1 && ps[0] == "m1" {
			return
		}
	}
	t.Fatal("a.service never placed on m1 (interval is an hour, so only a watch wake-up could do it)")
}

// A global unit under rollout runs, per machine, the revision the rollout
// pinned it to; a later plain replace of its file ends the pins.
func TestChangesPinsGlobalRollout(t *testing.T) {
	r := rollout.Rollout{
		Spec:  rollout.Spec{Unit: "g.service", Global: true, FromHash: "old", ToHash: "new", MaxParallel: 1},
		Phase: rollout.PhaseRunning,
		Targets: []rollout.Target{
			{Name: "m1", Status: rollout.TargetUpdated},
			{Name: "m2", Status: rollout.TargetUpdating},
			{Name: "m3", Status: rollout.TargetPending},
		},
	}
	res := schedule.Result{Assign: map[string][]string{"g.service": {"m1", "m2", "m3", "m4"}}}
	hashes := func(fileHash string) map[string]string {
		units := map[string]fleet.Unit{"g.service": {Name: "g.service", Hash: fileHash, DesiredState: fleet.JobStateLaunched}}
		snap := store.Snapshot{Rollouts: map[string]rollout.Rollout{"g.service": r}}
		got := map[string]string{}
		for _, e := range Changes(snap, units, res).Put {
			got[e.Machine] = e.Hash
		}
		return got
	}
	want := map[string]string{"m1": "new", "m2": "new", "m3": "old", "m4": "new"} // m4 joined later: the file's
	if got := hashes("new"); !maps.Equal(got, want) {
		t.Errorf("pinned hashes %v, want %v", got, want)
	}
	want = map[string]string{"m1": "third", "m2": "third", "m3": "third", "m4": "third"}
	if got := hashes("third"); !maps.Equal(got, want) {
		t.Errorf("after a plain replace: %v, want %v", got, want)
	}
	r.Global = false // a template's rollout rewrites instance files instead
	want = map[string]string{"m1": "new", "m2": "new", "m3": "new", "m4": "new"}
	if got := hashes("new"); !maps.Equal(got, want) {
		t.Errorf("non-global: %v, want %v", got, want)
	}
}

// A target moved with surge runs where its rollout says: both copies while
// the new one proves itself (the old one at the previous hash), then only
// the new one; a draining or lost machine is left out.
func TestRolloutPlacementsSurge(t *testing.T) {
	r := rollout.Rollout{
		Spec:  rollout.Spec{Unit: "web@.service", FromHash: "old", ToHash: "new", MaxParallel: 1, MaxSurge: 1},
		Phase: rollout.PhaseRunning,
		Targets: []rollout.Target{
			{Name: "web@1.service", Status: rollout.TargetUpdating, Machine: "m1", Surge: "m3"},
			{Name: "web@2.service", Status: rollout.TargetUpdated, Surge: "m2"},
			{Name: "web@3.service", Status: rollout.TargetPending},
		},
	}
	units := map[string]fleet.Unit{
		"web@1.service": {Name: "web@1.service", Hash: "new", DesiredState: fleet.JobStateLaunched},
		"web@2.service": {Name: "web@2.service", Hash: "new", DesiredState: fleet.JobStateLaunched},
		"web@3.service": {Name: "web@3.service", Hash: "old", DesiredState: fleet.JobStateLaunched},
	}
	machines := []fleet.Machine{{ID: "m1"}, {ID: "m2"}, {ID: "m3"}}
	entries := func(ms []fleet.Machine) map[string]string {
		snap := store.Snapshot{Machines: ms, Rollouts: map[string]rollout.Rollout{"web@.service": r}}
		res := schedule.Result{Assign: map[string][]string{"web@1.service": {"m1"}, "web@2.service": {"m1"}, "web@3.service": {"m2"}}}
		rolloutPlacements(&res, snap, units)
		got := map[string]string{}
		for _, e := range Changes(snap, units, res).Put {
			got[e.Unit+"@"+e.Machine] = e.Hash
		}
		return got
	}
	want := map[string]string{
		"web@1.service@m1": "old", "web@1.service@m3": "new", // both copies
		"web@2.service@m2": "new", // the surviving copy, not the scheduler's m1
		"web@3.service@m2": "old", // in place: the scheduler's, at its file's hash
	}
	if got := entries(machines); !maps.Equal(got, want) {
		t.Errorf("entries %v\nwant %v", got, want)
	}
	draining := []fleet.Machine{{ID: "m1"}, {ID: "m2"}, {ID: "m3", Metadata: map[string]string{"draining": "true"}}}
	want = map[string]string{"web@1.service@m1": "old", "web@2.service@m2": "new", "web@3.service@m2": "old"}
	if got := entries(draining); !maps.Equal(got, want) {
		t.Errorf("with m3 draining: %v\nwant %v", got, want)
	}
}

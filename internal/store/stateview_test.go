package store_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
)

// The StateView's copy equals what the store reads from etcd after random
// puts, deletes and lease expiries of states, and job records.
func TestStateViewFollowsStatesAndJobs(t *testing.T) {
	ctx := testCtx(t)
	st, _ := newStore(t)
	v := st.NewStateView(ctx)
	defer v.Close()
	pres, err := st.Register(ctx, fleet.Machine{ID: "m1"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pres2, err := st.Register(ctx, fleet.Machine{ID: "m2"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.UnitStates(ctx); err != nil { // starts following
		t.Fatal(err)
	}
	same := func(what string) {
		t.Helper()
		eventually(t, ctx, what, func() bool {
			want, err1 := st.UnitStates(ctx)
			got, err2 := v.UnitStates(ctx)
			wj, err3 := st.AllJobs(ctx)
			gj, err4 := v.AllJobs(ctx)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				t.Fatal(err1, err2, err3, err4)
			}
			return len(got) == len(want) && (len(got) == 0 || reflect.DeepEqual(got, want)) &&
				len(gj) == len(wj) && (len(gj) == 0 || reflect.DeepEqual(gj, wj))
		})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	actives := []string{"active", "inactive", "activating", "failed"}
	for round := range 20 {
		var put []fleet.UnitState
		for i := range 5 {
			put = append(put, fleet.UnitState{
				Name: fmt.Sprintf("u%d.service", rnd.IntN(8)), MachineID: "m1", Hash: "h",
				LoadState: "loaded", ActiveState: actives[(round+i)%len(actives)], SubState: "x",
			})
		}
		if err := st.PutUnitStates(ctx, pres.Lease(), put); err != nil {
			t.Fatal(err)
		}
		if round%3 == 0 {
			if err := st.DeleteUnitStates(ctx, "m1", []string{fmt.Sprintf("u%d.service", rnd.IntN(8))}); err != nil {
				t.Fatal(err)
			}
		}
		if round%4 == 0 {
			if err := st.PutJob(ctx, store.JobRecord{Unit: fmt.Sprintf("j%d.service", round), Machine: "m1", Result: store.JobSucceeded, Hash: "h"}); err != nil {
				t.Fatal(err)
			}
		}
		same(fmt.Sprintf("round %d", round))
	}
	// m2's states vanish with its lease.
	if err := st.PutUnitStates(ctx, pres2.Lease(), []fleet.UnitState{{Name: "x.service", MachineID: "m2", ActiveState: "active"}}); err != nil {
		t.Fatal(err)
	}
	same("m2's state")
	pres2.Close(ctx)
	same("m2's state gone with its lease")
	got, _ := v.UnitStates(ctx)
	for _, s := range got {
		if s.MachineID == "m2" {
			t.Fatalf("m2's state still in the view: %+v", s)
		}
	}
}

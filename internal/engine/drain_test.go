package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/schedule"
)

// The engine filters no machine: a drain (metadata draining=true, as
// fleetctl drain writes it) reaches schedule.Schedule through the store's
// snapshot, and its rule 12 moves the units away; undrain lets units back.
func TestReconcileDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newHoldFixture(t, ctx, "/engine-drain/", 3)
	pinned := "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=m1\n"
	if _, err := f.st.CreateUnit(ctx, unit(t, "pinned.service", pinned, fleet.JobStateLaunched)); err != nil {
		t.Fatal(err)
	}
	f.reconcile(0)
	if on := byMachine(f.schedule()); !slices.Contains(on["m1"], "pinned.service") || len(f.schedule()) != 7 {
		t.Fatalf("initial schedule = %v, want 7 units, pinned.service on m1", on)
	}

	if err := f.st.SetMetadata(ctx, "m1", fleet.DrainMetadataKey, "true"); err != nil {
		t.Fatal(err)
	}
	f.reconcile(time.Second)
	on := byMachine(f.schedule())
	if len(on["m1"]) != 0 || len(on["m2"])+len(on["m3"]) != 6 {
		t.Fatalf("after drain of m1: schedule = %v, want u1..u6 on m2 and m3, nothing on m1", on)
	}
	r, ok, err := f.st.Reason(ctx, "pinned.service")
	if err != nil || !ok {
		t.Fatalf("pinned.service has no reason: %v", err)
	}
	if r.PerMachine["m1"] != schedule.ReasonDraining || !strings.Contains(r.Summary, "m1 is draining") {
		t.Errorf("pinned.service reason = %+v; want the drain of m1 named", r)
	}
	before := f.rev()
	f.reconcile(time.Second)
	if after := f.rev(); after != before {
		t.Errorf("second round during the drain wrote: revision %d -> %d", before, after)
	}

	if err := f.st.DeleteMetadata(ctx, "m1", fleet.DrainMetadataKey); err != nil {
		t.Fatal(err)
	}
	f.reconcile(time.Second)
	if on := byMachine(f.schedule()); !slices.Equal(on["m1"], []string{"pinned.service"}) || len(f.schedule()) != 7 {
		t.Errorf("after undrain: schedule = %v, want pinned.service back on m1 and nothing else moved", on)
	}
	if _, ok, _ := f.st.Reason(ctx, "pinned.service"); ok {
		t.Errorf("pinned.service still has a reason after undrain")
	}
}

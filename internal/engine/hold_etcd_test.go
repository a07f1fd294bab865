package engine

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// holdFixture is an engine over a real etcd with machines m1..mN, six
// units spread over them, and a clock the test moves.
type holdFixture struct {
	t     *testing.T
	ctx   context.Context
	cli   *clientv3.Client
	st    *store.Store
	e     *Engine
	lead  *store.Leadership
	clock time.Time
	pres  map[string]*store.Presence
}

func newHoldFixture(t *testing.T, ctx context.Context, prefix string, machines int) *holdFixture {
	t.Helper()
	f := &holdFixture{t: t, ctx: ctx, cli: etcdtest.New(t), pres: map[string]*store.Presence{},
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.st = store.New(etcdkv.New(f.cli), prefix)
	for i := 1; i <= machines; i++ {
		f.register(fmt.Sprintf("m%d", i))
	}
	t.Cleanup(func() {
		for _, p := range f.pres {
			_ = p.Close(context.Background())
		}
	})
	for i := 1; i <= 6; i++ {
		if _, err := f.st.CreateUnit(ctx, unit(t, fmt.Sprintf("u%d.service", i), "[Service]\nExecStart=/bin/true\n", fleet.JobStateLaunched)); err != nil {
			t.Fatal(err)
		}
	}
	f.e = New(Config{Store: f.st, MachineID: "m1", LeaseTTL: 5 * time.Second})
	f.e.now = func() time.Time { return f.clock }
	lead, err := f.st.Campaign(ctx, "leader", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.lead = lead
	f.reconcile(0)
	return f
}

func (f *holdFixture) register(id string) {
	f.t.Helper()
	p, err := f.st.Register(f.ctx, fleet.Machine{ID: id}, 30*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	f.pres[id] = p
}

// revoke ends a machine's lease, as an expiry does.
func (f *holdFixture) revoke(id string) {
	f.t.Helper()
	if err := f.pres[id].Close(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	delete(f.pres, id)
}

// reconcile moves the clock by d and runs one round from a fresh snapshot.
func (f *holdFixture) reconcile(d time.Duration) {
	f.t.Helper()
	f.clock = f.clock.Add(d)
	if err := f.e.Reconcile(f.ctx, f.lead); err != nil {
		f.t.Fatal(err)
	}
}

func (f *holdFixture) schedule() []store.ScheduleEntry {
	f.t.Helper()
	s, err := f.st.Schedule(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *holdFixture) rev() int64 {
	f.t.Helper()
	r, err := f.cli.Get(f.ctx, "/")
	if err != nil {
		f.t.Fatal(err)
	}
	return r.Header.Revision
}

func byMachine(s []store.ScheduleEntry) map[string][]string {
	out := map[string][]string{}
	for _, e := range s {
		out[e.Machine] = append(out[e.Machine], e.Unit)
	}
	return out
}

// All three machines' leases are revoked (a few milliseconds apart, each
// noticed by its own round, as etcd's lessor revokes expired leases one by
// one) and registered again within the grace: no schedule entry is ever
// deleted or moved.
func TestMassLeaseLossKeepsPlacements(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newHoldFixture(t, ctx, "/engine-hold-mass/", 3)
	want := f.schedule()
	if len(want) != 6 || len(byMachine(want)) != 3 {
		t.Fatalf("initial schedule = %+v, want 6 units on 3 machines", want)
	}
	check := func(when string) {
		t.Helper()
		if got := f.schedule(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: schedule = %v, want unchanged %v", when, byMachine(got), byMachine(want))
		}
	}
	f.revoke("m3")
	f.reconcile(time.Second)
	check("m3 gone")
	f.revoke("m2")
	f.reconcile(5 * time.Millisecond)
	check("m2, m3 gone")
	f.revoke("m1")
	f.reconcile(5 * time.Millisecond)
	check("all gone")
	// Later rounds during the grace change nothing; a new unit waits.
	if _, err := f.st.CreateUnit(ctx, unit(t, "new.service", "[Service]\nExecStart=/bin/true\n", fleet.JobStateLaunched)); err != nil {
		t.Fatal(err)
	}
	f.reconcile(3 * time.Second)
	check("during the grace")
	if r, ok, _ := f.st.Reason(ctx, "new.service"); !ok || r.PerMachine["m1"] != reasonHeld {
		t.Errorf("new.service reason = %+v, %v; want m1 held", r, ok)
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		f.register(id)
	}
	f.reconcile(time.Second) // 4.01 s after the first loss: within the 5 s grace
	got := f.schedule()
	if len(got) != 7 {
		t.Fatalf("after re-registering: %v, want the 6 units unchanged and new.service placed", byMachine(got))
	}
	var kept []store.ScheduleEntry
	for _, e := range got {
		if e.Unit != "new.service" {
			kept = append(kept, e)
		}
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("after re-registering: schedule = %v, want %v plus new.service", byMachine(got), byMachine(want))
	}
	// Past the grace: nothing moves either, and the state is settled.
	f.reconcile(10 * time.Second)
	before := f.rev()
	f.reconcile(time.Second)
	if after := f.rev(); after != before {
		t.Errorf("reconcile after the hold wrote: revision %d -> %d", before, after)
	}
	if !reflect.DeepEqual(f.schedule(), got) {
		t.Errorf("schedule changed after the hold: %v", byMachine(f.schedule()))
	}
}

// One machine of three vanishes while the rest are fine: its units move
// (after the settle time of at most 200 ms), the others stay.
func TestLoneLeaseLossMovesUnits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newHoldFixture(t, ctx, "/engine-hold-lone/", 3)
	before := byMachine(f.schedule())
	f.revoke("m2")
	f.reconcile(time.Second)
	if got := byMachine(f.schedule()); !reflect.DeepEqual(got, before) {
		t.Fatalf("within the settle time: %v, want %v", got, before)
	}
	f.reconcile(holdSettle(5 * time.Second))
	after := byMachine(f.schedule())
	if len(after["m2"]) != 0 {
		t.Fatalf("m2 still has %v", after["m2"])
	}
	if n := len(after["m1"]) + len(after["m3"]); n != 6 {
		t.Fatalf("schedule = %v, want all 6 units on m1 and m3", after)
	}
	for _, id := range []string{"m1", "m3"} {
		for _, u := range before[id] {
			found := false
			for _, v := range after[id] {
				found = found || v == u
			}
			if !found {
				t.Errorf("%s moved off %s", u, id)
			}
		}
	}
}

// Two of four machines vanish together and do not come back: their units
// stay for the grace (agent_ttl), then move to the others.
func TestHeldMachinesReleasedAfterGrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newHoldFixture(t, ctx, "/engine-hold-expire/", 4)
	want := f.schedule()
	f.revoke("m3")
	f.revoke("m4")
	f.reconcile(time.Second)
	f.reconcile(4999 * time.Millisecond)
	if got := f.schedule(); !reflect.DeepEqual(got, want) {
		t.Fatalf("during the grace: %v, want %v", byMachine(got), byMachine(want))
	}
	f.reconcile(time.Millisecond)
	after := byMachine(f.schedule())
	if len(after["m3"])+len(after["m4"]) != 0 || len(after["m1"])+len(after["m2"]) != 6 {
		t.Fatalf("after the grace: %v, want all 6 units on m1 and m2", after)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

const prefix = "/test/fleet/"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T) (*store.Store, []string) {
	t.Helper()
	_, eps := etcdtest.NewServer(t)
	return store.New(etcdkv.New(etcdtest.NewClient(t, eps)), prefix), eps
}

// eventually polls cond until it holds or the test's context ends.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func unit(name, hash string) fleet.Unit {
	return fleet.Unit{
		Name:    name,
		Hash:    hash,
		Options: []fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/true " + hash}},
	}
}

func TestCreateUnitCreatesOverwritesOrKeeps(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)

	created, err := s.CreateUnit(ctx, unit("a.service", "h1"))
	if err != nil || !created {
		t.Fatalf("first create = %v, %v; want true, nil", created, err)
	}
	got, err := s.Unit(ctx, "a.service")
	if err != nil {
		t.Fatal(err)
	}
	if got.DesiredState != fleet.JobStateInactive || got.Hash != "h1" {
		t.Fatalf("created unit = %+v; want hash h1, desired state inactive", got)
	}

	// Same hash: no-op, even if the desired state differs.
	if err := s.SetDesiredState(ctx, "a.service", fleet.JobStateLaunched); err != nil {
		t.Fatal(err)
	}
	same := unit("a.service", "h1")
	same.DesiredState = fleet.JobStateLoaded
	if created, err := s.CreateUnit(ctx, same); err != nil || created {
		t.Fatalf("create with the same hash = %v, %v; want false, nil", created, err)
	}
	if got, _ := s.Unit(ctx, "a.service"); got.DesiredState != fleet.JobStateLaunched {
		t.Fatalf("same-hash create changed desired state to %q", got.DesiredState)
	}

	// Different hash: overwrite, desired state from the new unit.
	repl := unit("a.service", "h2")
	repl.DesiredState = fleet.JobStateLoaded
	if created, err := s.CreateUnit(ctx, repl); err != nil || !created {
		t.Fatalf("create with another hash = %v, %v; want true, nil", created, err)
	}
	got, _ = s.Unit(ctx, "a.service")
	if got.Hash != "h2" || got.DesiredState != fleet.JobStateLoaded || got.Options[0].Value != "/bin/true h2" {
		t.Fatalf("overwritten unit = %+v", got)
	}

	if _, err := s.CreateUnit(ctx, fleet.Unit{}); err == nil {
		t.Fatal("create of a unit without a name succeeded")
	}
}

func TestUnitsSortedAndMissingUnitNotFound(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	for _, n := range []string{"c.service", "a.service", "b@.service"} {
		if _, err := s.CreateUnit(ctx, unit(n, "h")); err != nil {
			t.Fatal(err)
		}
	}
	us, err := s.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	if strings.Join(names, " ") != "a.service b@.service c.service" {
		t.Fatalf("units = %v", names)
	}
	if _, err := s.Unit(ctx, "nope.service"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Unit(missing) error = %v; want ErrNotFound", err)
	}
}

func TestSetDesiredStateMissingUnit(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	err := s.SetDesiredState(ctx, "nope.service", fleet.JobStateLaunched)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("error = %v; want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "nope.service") {
		t.Fatalf("error %q does not name the unit", err)
	}
}

// Concurrent writers of the same unit must not lose each other's changes:
// SetDesiredState only writes over the revision it read.
func TestSetDesiredStateCASKeepsConcurrentReplace(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	if _, err := s.CreateUnit(ctx, unit("a.service", "h0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			st := fleet.JobStateLoaded
			if i%2 == 0 {
				st = fleet.JobStateLaunched
			}
			errc <- s.SetDesiredState(ctx, "a.service", st)
		}()
		go func() {
			defer wg.Done()
			u := unit("a.service", fmt.Sprintf("h%d", i+1))
			u.DesiredState = fleet.JobStateLoaded
			_, err := s.CreateUnit(ctx, u)
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Unit(ctx, "a.service")
	if err != nil {
		t.Fatal(err)
	}
	// Whatever won, hash and options must belong together (no torn write).
	if got.Options[0].Value != "/bin/true "+got.Hash {
		t.Fatalf("unit options %q do not match hash %q", got.Options[0].Value, got.Hash)
	}
}

func TestDestroyUnitDeletesUnitAndReason(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	if _, err := s.CreateUnit(ctx, unit("a.service", "h")); err != nil {
		t.Fatal(err)
	}
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	if err := s.Apply(ctx, l, store.Changes{PutReasons: []fleet.Reason{{Unit: "a.service", Summary: "no machine"}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Reason(ctx, "a.service"); err != nil || !ok {
		t.Fatalf("Reason before destroy = %v, %v", ok, err)
	}
	if err := s.DestroyUnit(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unit(ctx, "a.service"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Unit after destroy: %v; want ErrNotFound", err)
	}
	if _, ok, err := s.Reason(ctx, "a.service"); err != nil || ok {
		t.Fatalf("Reason after destroy = %v, %v; want none", ok, err)
	}
	if err := s.DestroyUnit(ctx, "a.service"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second destroy: %v; want ErrNotFound", err)
	}
}

func machineIDs(t *testing.T, ctx context.Context, s *store.Store) []string {
	t.Helper()
	ms, err := s.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// A machine whose fleetd dies (its client goes away, keepalives stop)
// vanishes with its lease, and so do the unit states it wrote on the lease.
func TestRegisteredMachineAndStatesVanishWithLease(t *testing.T) {
	ctx := testCtx(t)
	s, eps := newStore(t)
	dyingCli := etcdtest.NewClient(t, eps)
	dying := store.New(etcdkv.New(dyingCli), prefix)

	p, err := dying.Register(ctx, fleet.Machine{ID: "m1", PublicIP: "10.0.0.1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := dying.PutUnitStates(ctx, p.Lease(), []fleet.UnitState{
		{Name: "a.service", MachineID: "m1", ActiveState: "active", SubState: "running", Hash: "h"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(ctx, fleet.Machine{PublicIP: "10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "m1" || ms[0].PublicIP != "10.0.0.9" {
		t.Fatalf("machines = %+v; want m1 with the updated IP", ms)
	}
	sts, err := s.UnitStates(ctx)
	if err != nil || len(sts) != 1 || sts[0].ActiveState != "active" {
		t.Fatalf("unit states = %+v, %v", sts, err)
	}

	dyingCli.Close() // the fleetd dies: no more keepalives, no revoke

	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("Presence.Done not closed after the client died")
	}
	eventually(t, ctx, "the machine's lease expires", func() bool { return len(machineIDs(t, ctx, s)) == 0 })
	sts, err = s.UnitStates(ctx)
	if err != nil || len(sts) != 0 {
		t.Fatalf("unit states after lease expiry = %+v, %v; want none", sts, err)
	}
}

func TestPresenceCloseRevokes(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	p, err := s.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if ids := machineIDs(t, ctx, s); len(ids) != 0 {
		t.Fatalf("machines after Close = %v; want none", ids)
	}
}

func TestRegisterRefusesDuplicateMachineID(t *testing.T) {
	ctx := testCtx(t)
	s, eps := newStore(t)
	first, err := s.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other := store.New(etcdkv.New(etcdtest.NewClient(t, eps)), prefix)
	_, err = other.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if !errors.Is(err, store.ErrMachineIDInUse) {
		t.Fatalf("second register: %v; want ErrMachineIDInUse", err)
	}
	if !strings.Contains(err.Error(), "machine ID m1 is already registered by a live fleetd") {
		t.Fatalf("error %q is not the documented message", err)
	}
	// Once the first one is gone, the ID is free.
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := other.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatalf("register after the first closed: %v", err)
	}
	second.Close(ctx)
}

func TestMachinesMergeDynamicMetadata(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	for _, m := range []fleet.Machine{
		{ID: "m2", Metadata: map[string]string{"az": "a", "region": "x"}},
		{ID: "m1", Metadata: map[string]string{"az": "b"}},
	} {
		p, err := s.Register(ctx, m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
	}
	for _, kv := range [][3]string{
		{"m2", "az", "c"},    // overrides
		{"m2", "region", ""}, // hides
		{"m2", "disk", "ssd"},
		{"m1", "az", ""},
		{"m3", "az", "z"}, // not live: ignored
	} {
		if err := s.SetMetadata(ctx, kv[0], kv[1], kv[2]); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := s.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != "m1" || ms[1].ID != "m2" {
		t.Fatalf("machines = %+v; want m1, m2", ms)
	}
	if len(ms[0].Metadata) != 0 {
		t.Errorf("m1 metadata = %v; want none (az hidden)", ms[0].Metadata)
	}
	if want := map[string]string{"az": "c", "disk": "ssd"}; !maps.Equal(ms[1].Metadata, want) {
		t.Errorf("m2 metadata = %v; want %v", ms[1].Metadata, want)
	}

	if err := s.DeleteMetadata(ctx, "m2", "region"); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.Machines(ctx)
	if ms[1].Metadata["region"] != "x" {
		t.Errorf("m2 metadata after deleting the override = %v; want region=x back", ms[1].Metadata)
	}
}

func TestCampaignAndLeader(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	if id, err := s.Leader(ctx); err != nil || id != "" {
		t.Fatalf("Leader with nobody campaigning = %q, %v", id, err)
	}
	l1, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l1.Key, prefix+"engine/leader/") || l1.Rev == 0 {
		t.Fatalf("leadership key %q rev %d", l1.Key, l1.Rev)
	}
	if id, err := s.Leader(ctx); err != nil || id != "m1" {
		t.Fatalf("Leader = %q, %v; want m1", id, err)
	}

	won := make(chan *store.Leadership, 1)
	go func() {
		l2, err := s.Campaign(ctx, "m2", 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		won <- l2
	}()
	// m2 must not win while m1 leads; wait until m2's key exists to be sure
	// it is campaigning, then check.
	eventually(t, ctx, "m2 campaigns", func() bool {
		resp, err := s.KV().Raw().Get(ctx, prefix+"engine/leader/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	})
	select {
	case <-won:
		t.Fatal("m2 won while m1 leads")
	default:
	}
	if err := l1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	<-l1.Done()
	l2 := <-won
	if l2 == nil {
		t.FailNow()
	}
	if id, _ := s.Leader(ctx); id != "m2" {
		t.Fatalf("Leader after m1 resigned = %q; want m2", id)
	}
	l2.Resign(ctx)
	if id, _ := s.Leader(ctx); id != "" {
		t.Fatalf("Leader after everyone resigned = %q; want none", id)
	}
}

func TestApplyByDeposedLeaderWritesNothing(t *testing.T) {
	ctx := testCtx(t)
	s, eps := newStore(t)
	entry := store.ScheduleEntry{Unit: "a.service", Machine: "m1", Hash: "h", DesiredState: fleet.JobStateLaunched}

	t.Run("resigned", func(t *testing.T) {
		l, err := s.Campaign(ctx, "m1", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		err = s.Apply(ctx, l, store.Changes{Put: []store.ScheduleEntry{entry}})
		if !errors.Is(err, store.ErrNotLeader) {
			t.Fatalf("Apply after Resign: %v; want ErrNotLeader", err)
		}
		assertNothingScheduled(t, ctx, s)
	})

	t.Run("session lost, new leader", func(t *testing.T) {
		oldCli := etcdtest.NewClient(t, eps)
		old, err := store.New(etcdkv.New(oldCli), prefix).Campaign(ctx, "m1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		oldCli.Close() // the old leader hangs: its lease runs out
		<-old.Done()
		l, err := s.Campaign(ctx, "m2", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Resign(ctx)
		err = s.Apply(ctx, old, store.Changes{
			Put:        []store.ScheduleEntry{entry},
			PutReasons: []fleet.Reason{{Unit: "b.service", Summary: "x"}},
		})
		if !errors.Is(err, store.ErrNotLeader) {
			t.Fatalf("Apply by the deposed leader: %v; want ErrNotLeader", err)
		}
		assertNothingScheduled(t, ctx, s)
		// The new leader can write.
		if err := s.Apply(ctx, l, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
			t.Fatal(err)
		}
		if es, _ := s.Schedule(ctx); len(es) != 1 || es[0] != entry {
			t.Fatalf("schedule = %+v; want %+v", es, entry)
		}
	})
}

func assertNothingScheduled(t *testing.T, ctx context.Context, s *store.Store) {
	t.Helper()
	for _, dir := range []string{"schedule/", "placements/", "reasons/"} {
		resp, err := s.KV().Raw().Get(ctx, prefix+dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 0 {
			t.Fatalf("%d keys under %s written by a deposed leader", resp.Count, dir)
		}
	}
}

// More ops than one transaction may hold: all land, in several
// transactions, each schedule key together with its placement.
func TestApplyChunksLargeChanges(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)

	var c store.Changes
	for i := range 200 { // 400 ops
		c.Put = append(c.Put, store.ScheduleEntry{
			Unit: fmt.Sprintf("u%03d.service", i), Machine: fmt.Sprintf("m%d", i%3),
			Hash: "h", DesiredState: fleet.JobStateLaunched,
		})
	}
	for i := range 15 {
		c.PutReasons = append(c.PutReasons, fleet.Reason{Unit: fmt.Sprintf("r%d.service", i), Summary: "no machine"})
	}
	if err := s.Apply(ctx, l, c); err != nil {
		t.Fatal(err)
	}

	resp, err := s.KV().Raw().Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	perRev := map[int64]int{}
	schedRev := map[string]int64{}
	placeRev := map[string]int64{}
	var nsched, nplace, nreason int
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), prefix)
		switch {
		case strings.HasPrefix(k, "schedule/"):
			nsched++
			m, u, _ := strings.Cut(strings.TrimPrefix(k, "schedule/"), "/")
			schedRev[u+"@"+m] = kv.ModRevision
		case strings.HasPrefix(k, "placements/"):
			nplace++
			u, m, _ := strings.Cut(strings.TrimPrefix(k, "placements/"), "/")
			placeRev[u+"@"+m] = kv.ModRevision
		case strings.HasPrefix(k, "reasons/"):
			nreason++
		default:
			continue
		}
		perRev[kv.ModRevision]++
	}
	if nsched != 200 || nplace != 200 || nreason != 15 {
		t.Fatalf("landed %d schedule, %d placement, %d reason keys; want 200, 200, 15", nsched, nplace, nreason)
	}
	for k, r := range schedRev {
		if placeRev[k] != r {
			t.Errorf("%s: schedule key at rev %d, placement at %d; want one txn", k, r, placeRev[k])
		}
	}
	if len(perRev) < 4 {
		t.Errorf("415 ops landed in %d transactions; want at least 4", len(perRev))
	}
	for rev, n := range perRev {
		if n > store.MaxTxnOps {
			t.Errorf("txn at rev %d wrote %d keys; max %d", rev, n, store.MaxTxnOps)
		}
	}

	// Deleting an entry deletes both keys.
	del := store.Changes{Delete: []store.ScheduleEntry{{Unit: "u000.service", Machine: "m0"}}}
	if err := s.Apply(ctx, l, del); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.Placements(ctx, "u000.service"); err != nil || len(ms) != 0 {
		t.Fatalf("placements after delete = %v, %v", ms, err)
	}
	if es, _, _ := s.MachineSchedule(ctx, "m0"); len(es) != 66 {
		t.Fatalf("m0 has %d entries after delete; want 66", len(es))
	}
}

func TestApplyDeleteThenPutSameEntryIsPut(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	e := store.ScheduleEntry{Unit: "a.service", Machine: "m1", Hash: "h2", DesiredState: fleet.JobStateLoaded}
	err = s.Apply(ctx, l, store.Changes{
		Delete: []store.ScheduleEntry{{Unit: "a.service", Machine: "m1"}},
		Put:    []store.ScheduleEntry{e},
	})
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := s.Schedule(ctx); len(es) != 1 || es[0] != e {
		t.Fatalf("schedule = %+v; want %+v", es, e)
	}
}

func TestMachineScheduleAndPlacements(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	put := []store.ScheduleEntry{
		{Unit: "b.service", Machine: "m1", Hash: "h", DesiredState: fleet.JobStateLaunched},
		{Unit: "a.service", Machine: "m1", Hash: "h", DesiredState: fleet.JobStateLoaded},
		{Unit: "a.service", Machine: "m10", Hash: "h", DesiredState: fleet.JobStateLaunched},
		{Unit: "g.service", Machine: "m2", Hash: "h", DesiredState: fleet.JobStateLaunched},
		{Unit: "g.service", Machine: "m10", Hash: "h", DesiredState: fleet.JobStateLaunched},
	}
	if err := s.Apply(ctx, l, store.Changes{Put: put}); err != nil {
		t.Fatal(err)
	}
	es, rev, err := s.MachineSchedule(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0] != put[1] || es[1] != put[0] || rev == 0 {
		t.Fatalf("MachineSchedule(m1) = %+v at %d; want a, b on m1 only", es, rev)
	}
	ms, err := s.Placements(ctx, "g.service")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ms, ",") != "m10,m2" {
		t.Fatalf("Placements(g) = %v; want m10,m2", ms)
	}
	if ms, _ := s.Placements(ctx, "g"); len(ms) != 0 {
		t.Fatalf("Placements of a name prefix = %v; want none", ms)
	}
}

// Snapshot reads at one revision: a writer that always updates a unit and
// its reason together is never seen half-done.
func TestSnapshotIsConsistent(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	p, err := s.Register(ctx, fleet.Machine{ID: "m1", Metadata: map[string]string{"az": "a"}}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := s.SetMetadata(ctx, "m1", "az", "b"); err != nil {
		t.Fatal(err)
	}
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)

	wctx, stop := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; wctx.Err() == nil; i++ {
			h := fmt.Sprint(i)
			_, err := s.KV().Raw().Txn(wctx).Then(
				clientv3.OpPut(prefix+"units/a.service", fmt.Sprintf(`{"name":"a.service","hash":%q,"desiredState":"launched"}`, h)),
				clientv3.OpPut(prefix+"schedule/m1/a.service", fmt.Sprintf(`{"hash":%q,"desiredState":"launched"}`, h)),
				clientv3.OpPut(prefix+"reasons/x.service", fmt.Sprintf(`{"summary":%q}`, h)),
			).Commit()
			if err != nil && wctx.Err() == nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()
	var last int64
	for range 30 {
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Units) == 0 {
			continue
		}
		h := snap.Units[0].Hash
		if len(snap.Schedule) != 1 || snap.Schedule[0].Hash != h || snap.Reasons["x.service"].Summary != h {
			t.Fatalf("torn snapshot at rev %d: unit hash %s, schedule %+v, reasons %+v", snap.Rev, h, snap.Schedule, snap.Reasons)
		}
		if len(snap.Machines) != 1 || snap.Machines[0].Metadata["az"] != "b" {
			t.Fatalf("snapshot machines = %+v; want m1 with az=b", snap.Machines)
		}
		if snap.Rev < last {
			t.Fatalf("snapshot revision went back from %d to %d", last, snap.Rev)
		}
		last = snap.Rev
	}
	stop()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
}

func TestUnitStatesBatchedAndDeleted(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	p, err := s.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var sts []fleet.UnitState
	var names []string
	for i := range 300 {
		n := fmt.Sprintf("u%03d.service", i)
		names = append(names, n)
		sts = append(sts, fleet.UnitState{Name: n, MachineID: "m1", ActiveState: "active"})
	}
	if err := s.PutUnitStates(ctx, p.Lease(), sts); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnitStates(ctx)
	if err != nil || len(got) != 300 || got[0].Name != "u000.service" {
		t.Fatalf("unit states: %d, %v", len(got), err)
	}
	if err := s.DeleteUnitStates(ctx, "m1", names[:250]); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UnitStates(ctx); len(got) != 50 {
		t.Fatalf("%d unit states after deleting 250 of 300", len(got))
	}
}

func TestNotifyWakesOnlyForItsPrefix(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	nctx, cancel := context.WithCancel(ctx)
	mine := s.Notify(nctx, "schedule/m1/")
	all := s.Notify(nctx, "")

	if _, err := s.KV().Raw().Put(ctx, prefix+"schedule/m10/a.service", "{}"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("no wake-up for a change under the whole prefix")
	}
	// The whole-prefix watcher saw it; give the other one a moment more.
	time.Sleep(200 * time.Millisecond)
	select {
	case <-mine:
		t.Fatal("woken by a change under another machine's prefix")
	default:
	}

	for i := range 5 { // a burst coalesces into at least one wake-up
		if _, err := s.KV().Raw().Put(ctx, prefix+"schedule/m1/a.service", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-mine:
	case <-ctx.Done():
		t.Fatal("no wake-up for a change under schedule/m1/")
	}

	cancel()
	for range mine {
	}
	for range all {
	}
}

// Compaction of the revisions the watch started at does not stop wake-ups.
func TestNotifyKeepsWorkingAfterCompaction(t *testing.T) {
	ctx := testCtx(t)
	s, eps := newStore(t)
	other := etcdtest.NewClient(t, eps)
	ch := s.Notify(ctx, "units/")
	var rev int64
	for i := range 10 {
		resp, err := other.Put(ctx, prefix+"units/x", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := other.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	<-ch
	if _, err := other.Put(ctx, prefix+"units/y", "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("no wake-up after compaction")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// When etcd goes away and comes back, Notify's watch resumes and wakes the
// consumer again; calls made while it is down fail within their deadline.
func TestNotifySurvivesEtcdRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s: etcd waits for open watches on close, gRPC backs off reconnecting")
	}
	ctx := testCtx(t)
	cfg := etcdserver.Config{
		Name:             "restart",
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		TickMs:           10,
		ElectionMs:       100,
		UnsafeNoFsync:    true,
	}
	srv, err := etcdserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cli := etcdtest.NewClient(t, srv.ClientURLs())
	s := store.New(etcdkv.New(cli), prefix, store.WithRequestTimeout(500*time.Millisecond))
	ch := s.Notify(ctx, "units/")
	if _, err := s.CreateUnit(ctx, unit("a.service", "h1")); err != nil {
		t.Fatal(err)
	}
	<-ch

	srv.Close()
	if _, err := s.Units(ctx); err == nil {
		t.Fatal("Units succeeded with etcd down")
	} else if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
		t.Logf("Units with etcd down: %v", err)
	}

	srv, err = etcdserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Drain whatever the outage produced, then expect a wake-up for a
	// fresh change.
	select {
	case <-ch:
	default:
	}
	eventually(t, ctx, "etcd answers again", func() bool {
		_, err := s.CreateUnit(ctx, unit("b.service", "h1"))
		return err == nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatal("no wake-up after etcd came back")
	}
}

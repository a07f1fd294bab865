package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	execrunner "github.com/fleetd/fleet/internal/runner/exec"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// newTestMachine registers machine m1 in a store under prefix on a real
// etcd and gives it a real exec runner and journal. The caller defers the
// returned func, which stops the runner's units and deregisters m1.
func newTestMachine(ctx context.Context, t *testing.T, prefix string) (*store.Store, *store.Presence, *journal.Journal, *execrunner.Runner, func()) {
	t.Helper()
	st := store.New(etcdkv.New(etcdtest.New(t)), prefix)
	pres, err := st.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	jr, err := journal.Open(t.TempDir(), journal.Options{Hostname: "test"})
	if err != nil {
		pres.Close(ctx)
		t.Fatal(err)
	}
	rn, err := execrunner.New(execrunner.Options{Journal: jr, UnitsDir: t.TempDir(), Hostname: "test", MachineID: "m1"})
	if err != nil {
		pres.Close(ctx)
		t.Fatal(err)
	}
	return st, pres, jr, rn, func() {
		_ = rn.StopAll(ctx)
		_ = rn.Close(ctx)
		pres.Close(ctx)
	}
}

// A real etcd, a real exec runner with real processes: the agent follows the
// schedule the "engine" (this test, holding leadership) writes.
func TestAgentFollowsSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, pres, jr, rn, closeMachine := newTestMachine(ctx, t, "/agent-test/")
	defer closeMachine()

	u, lead, entry := launchOnM1(ctx, t, st, "loop.service", "[Unit]\nDescription=loop\n[Service]\nExecStart=/bin/sh -c 'while true; do echo tick; sleep 0.1; done'\n")

	a := New(Config{Store: st, Runner: rn, MachineID: "m1", Lease: pres.Lease, Interval: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	await := func(what string, cond func(fleet.UnitState, bool) bool) {
		t.Helper()
		var last []fleet.UnitState
		eventually(t, what, func() bool {
			states, err := st.UnitStates(ctx)
			if err != nil {
				t.Fatal(err)
			}
			last = states
			var found fleet.UnitState
			ok := false
			for _, s := range states {
				if s.Name == u.Name && s.MachineID == "m1" {
					found, ok = s, true
				}
			}
			return cond(found, ok)
		}, func() string { return fmt.Sprintf("states: %+v", last) })
	}

	await("launched and running", func(s fleet.UnitState, ok bool) bool {
		return ok && s.JobState == fleet.JobStateLaunched && s.ActiveState == "active" && s.SubState == "running" && s.Hash == u.Hash
	})
	if entries, _ := jr.Tail(u.Name, 0); len(entries) == 0 {
		t.Error("no journal output from the running unit")
	}

	// desired loaded: stopped but still loaded
	entry.DesiredState = fleet.JobStateLoaded
	if err := st.Apply(ctx, lead, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	await("loaded and inactive", func(s fleet.UnitState, ok bool) bool {
		return ok && s.JobState == fleet.JobStateLoaded && s.ActiveState == "inactive"
	})

	// launched again, then unscheduled: unloaded and its state deleted
	entry.DesiredState = fleet.JobStateLaunched
	if err := st.Apply(ctx, lead, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	await("running again", func(s fleet.UnitState, ok bool) bool { return ok && s.ActiveState == "active" })
	if err := st.Apply(ctx, lead, store.Changes{Delete: []store.ScheduleEntry{{Unit: u.Name, Machine: "m1"}}}); err != nil {
		t.Fatal(err)
	}
	await("state deleted", func(_ fleet.UnitState, ok bool) bool { return !ok })
	if _, ok := rn.States()[u.Name]; ok {
		t.Error("runner still holds the unit after it was unscheduled")
	}
}

// eventually polls cond until it holds or 30 s pass; then it fails,
// saying what it waited for and, with detail, what it saw last.
func eventually(t *testing.T, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting for " + what
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// launchOnM1 submits unit name with text, wins the engine's election as m1
// and schedules the unit, launched, on machine m1.
func launchOnM1(ctx context.Context, t *testing.T, st *store.Store, name, text string) (fleet.Unit, *store.Leadership, store.ScheduleEntry) {
	t.Helper()
	opts, err := unitfile.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	u := fleet.Unit{Name: name, Options: opts, Hash: unitfile.Hash(opts), DesiredState: fleet.JobStateLaunched}
	if _, err := st.CreateUnit(ctx, u); err != nil {
		t.Fatal(err)
	}
	lead, err := st.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	entry := store.ScheduleEntry{Unit: u.Name, Machine: "m1", Hash: u.Hash, DesiredState: fleet.JobStateLaunched}
	if err := st.Apply(ctx, lead, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	return u, lead, entry
}

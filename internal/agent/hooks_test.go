package agent

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// BeforeStop runs while the unit is still active, before the runner stops
// it; OnChange fires after rounds and Units reports the loaded options.
func TestAgentHooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, pres, _, rn, closeMachine := newTestMachine(ctx, t, "/agent-hooks/")
	defer closeMachine()
	u, lead, entry := launchOnM1(ctx, t, st, "hook.service", "[Service]\nExecStart=/bin/sleep 60\n[X-Service]\nName=s\nPort=1\n")
	opts := u.Options

	var mu sync.Mutex
	var stops []string // "<unit> <active state at the call>"
	changes := 0
	a := New(Config{
		Store: st, Runner: rn, MachineID: "m1", Lease: pres.Lease, Interval: time.Hour,
		BeforeStop: func(_ context.Context, unit string) {
			mu.Lock()
			stops = append(stops, unit+" "+rn.States()[unit].ActiveState)
			mu.Unlock()
		},
		OnChange: func() {
			mu.Lock()
			changes++
			mu.Unlock()
		},
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	eventually(t, "active", func() bool { return rn.States()[u.Name].ActiveState == "active" })
	eventually(t, "OnChange", func() bool { mu.Lock(); defer mu.Unlock(); return changes > 0 })
	units := a.Units()
	if len(units) != 1 || units[0].Name != u.Name || !slices.Equal(units[0].Options, opts) {
		t.Fatalf("Units() = %+v", units)
	}

	entry.DesiredState = fleet.JobStateLoaded
	if err := st.Apply(ctx, lead, store.Changes{Put: []store.ScheduleEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stopped", func() bool { return rn.States()[u.Name].ActiveState == "inactive" })
	mu.Lock()
	got := slices.Clone(stops)
	mu.Unlock()
	if !slices.Equal(got, []string{"hook.service active"}) {
		t.Fatalf("BeforeStop calls: %q", got)
	}
	if err := st.Apply(ctx, lead, store.Changes{Delete: []store.ScheduleEntry{{Unit: u.Name, Machine: "m1"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unloaded", func() bool { _, ok := rn.States()[u.Name]; return !ok })
	mu.Lock()
	got = slices.Clone(stops)
	mu.Unlock()
	if len(got) != 2 || got[1] != "hook.service inactive" {
		t.Fatalf("BeforeStop before unload: %q", got)
	}
}

// Units stopped in the same round are deregistered concurrently, so the
// registry's deregistration delay is paid once per round, not per unit: the
// BeforeStop hook below only returns once all three calls are in flight,
// which a one-at-a-time agent would never reach.
func TestBeforeStopIsConcurrentWithinARound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, pres, _, rn, closeMachine := newTestMachine(ctx, t, "/agent-hooks-conc/")
	defer closeMachine()
	lead, err := st.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := unitfile.Parse([]byte("[Service]\nExecStart=/bin/sleep 60\n"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a.service", "b.service", "c.service"}
	var entries []store.ScheduleEntry
	for _, n := range names {
		u := fleet.Unit{Name: n, Options: opts, Hash: unitfile.Hash(opts), DesiredState: fleet.JobStateLaunched}
		if _, err := st.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, store.ScheduleEntry{Unit: n, Machine: "m1", Hash: u.Hash, DesiredState: fleet.JobStateLaunched})
	}
	if err := st.Apply(ctx, lead, store.Changes{Put: entries}); err != nil {
		t.Fatal(err)
	}

	var arrived sync.WaitGroup
	arrived.Add(len(names))
	allIn := make(chan struct{})
	go func() { arrived.Wait(); close(allIn) }()
	concurrent := make(chan bool, len(names))
	var seenMu sync.Mutex
	seen := map[string]bool{}
	a := New(Config{
		Store: st, Runner: rn, MachineID: "m1", Lease: pres.Lease, Interval: time.Hour,
		BeforeStop: func(ctx context.Context, unit string) {
			seenMu.Lock()
			first := !seen[unit]
			seen[unit] = true
			seenMu.Unlock()
			if !first {
				return
			}
			arrived.Done()
			select {
			case <-allIn:
				concurrent <- true
			case <-time.After(10 * time.Second):
				concurrent <- false
			}
		},
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	eventually(t, "units all active", func() bool {
		for _, n := range names {
			if rn.States()[n].ActiveState != "active" {
				return false
			}
		}
		return true
	})
	if err := st.Apply(ctx, lead, store.Changes{Delete: entries}); err != nil {
		t.Fatal(err)
	}
	for range names {
		if !<-concurrent {
			t.Fatal("BeforeStop calls of one round did not overlap: the agent deregisters units one at a time")
		}
	}
}

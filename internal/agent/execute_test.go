package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// fakeRunner is an in-memory runner.Runner. Start blocks while gate is
// non-nil and open, after announcing the unit on entered.
type fakeRunner struct {
	mu      sync.Mutex
	units   map[string]runner.State
	calls   []string         // "start a", "stop a", ...
	fail    map[string]error // by call ("unload a")
	gate    chan struct{}    // Start blocks until it is closed
	entered chan string      // Start sends its unit before blocking
	changed chan struct{}    // never fires
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{units: map[string]runner.State{}, fail: map[string]error{}, changed: make(chan struct{})}
}

func (r *fakeRunner) record(call string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	return r.fail[call]
}

func (r *fakeRunner) Load(_ context.Context, u runner.Unit) error {
	if err := r.record("load " + u.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.units[u.Name] = runner.State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead", Hash: u.Hash}
	return nil
}

func (r *fakeRunner) Start(ctx context.Context, name string) error {
	r.mu.Lock()
	gate, entered := r.gate, r.entered
	r.mu.Unlock()
	if entered != nil {
		entered <- name
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.setActive("start", name, "active")
}

func (r *fakeRunner) Stop(_ context.Context, name string) error {
	return r.setActive("stop", name, "inactive")
}

func (r *fakeRunner) setActive(verb, name, active string) error {
	if err := r.record(verb + " " + name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.units[name]
	if !ok {
		return fmt.Errorf("%w: %s", runner.ErrNotLoaded, name)
	}
	st.ActiveState = active
	r.units[name] = st
	return nil
}

func (r *fakeRunner) Unload(_ context.Context, name string) error {
	if err := r.record("unload " + name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.units[name]; !ok {
		return fmt.Errorf("%w: %s", runner.ErrNotLoaded, name)
	}
	delete(r.units, name)
	return nil
}

func (r *fakeRunner) States() map[string]runner.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]runner.State, len(r.units))
	for k, v := range r.units {
		out[k] = v
	}
	return out
}

func (r *fakeRunner) Status(name string) (runner.Status, error) {
	st, ok := r.States()[name]
	if !ok {
		return runner.Status{}, runner.ErrNotLoaded
	}
	return runner.Status{Name: name, State: st}, nil
}

func (r *fakeRunner) Changed() <-chan struct{} { return r.changed }

func (r *fakeRunner) active(name string) string { return r.States()[name].ActiveState }

func (r *fakeRunner) callLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// within fails the test unless f returns within a generous bound (it
// would block for good if it waited on the stuck round).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s waited for the runner", what)
	}
}

// A round stuck in Runner.Start (a real etcd, the schedule written as the
// engine would) does not hold up Units, Publish or LeaseLost.
func TestUnitsDoNotWaitForTheRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := store.New(etcdkv.New(etcdtest.New(t)), "/agent-blocked/")
	pres, err := st.Register(ctx, fleet.Machine{ID: "m1"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pres.Close(ctx)
	u, _, _ := launchOnM1(ctx, t, st, "stuck.service", "[Service]\nExecStart=/bin/sleep 60\n")
	opts := u.Options

	rn := newFakeRunner()
	gate := make(chan struct{})
	rn.gate, rn.entered = gate, make(chan string, 1)
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()
	a := New(Config{Store: st, Runner: rn, MachineID: "m1", Lease: pres.Lease, Interval: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	select {
	case name := <-rn.entered:
		if name != u.Name {
			t.Fatalf("Start(%q)", name)
		}
	case <-ctx.Done():
		t.Fatal("the agent never started the unit")
	}
	// The round is now stuck in Start.
	var units []runner.Unit
	within(t, "Units", func() { units = a.Units() })
	if len(units) != 1 || units[0].Name != u.Name || units[0].Hash != u.Hash || !slices.Equal(units[0].Options, opts) {
		t.Fatalf("Units() = %+v during the round, want the loaded %s", units, u.Name)
	}
	within(t, "Publish", func() {
		if err := a.Publish(ctx); err != nil {
			t.Errorf("Publish: %v", err)
		}
	})
	states, err := st.UnitStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Name != u.Name || states[0].JobState != fleet.JobStateLoaded {
		t.Fatalf("published %+v during the round, want %s loaded", states, u.Name)
	}

	release()
	eventually(t, "the start to complete", func() bool { return rn.active(u.Name) == "active" })
}

// execAgent is an agent for execute alone: no store, a fake runner.
func execAgent(rn *fakeRunner, stops *[]string, mu *sync.Mutex) *Agent {
	return New(Config{Runner: rn, MachineID: "m1", BeforeStop: func(_ context.Context, unit string) {
		mu.Lock()
		defer mu.Unlock()
		*stops = append(*stops, unit)
	}})
}

// LeaseLost does not wait for a round either: the fenced units are stopped
// while a Start hangs, nothing more is started after it, and a fenced unit
// whose start was in flight is stopped once the start returns.
func TestLeaseLostDuringARound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rn := newFakeRunner()
	var mu sync.Mutex
	var stops []string
	a := execAgent(rn, &stops, &mu)
	for _, n := range []string{"f1", "f2", "g"} {
		if err := rn.Load(ctx, runner.Unit{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	_ = rn.setActive("start", "f1", "active")
	a.loaded["f1"] = fencedRec("h1", launched)
	a.loaded["f2"] = fencedRec("h1", loaded)
	a.loaded["g"] = rec("h1", loaded)
	gate := make(chan struct{})
	rn.gate, rn.entered = gate, make(chan string, 1)

	errc := make(chan []error, 1)
	go func() { errc <- a.execute(ctx, []action{{kind: actStart, unit: "f2"}, {kind: actStart, unit: "g"}}, 0) }()
	if got := <-rn.entered; got != "f2" {
		t.Fatalf("Start(%q)", got)
	}
	within(t, "LeaseLost", func() { a.LeaseLost(ctx) })
	if got := rn.active("f1"); got != "inactive" {
		t.Fatalf("f1 (StopOnDisconnect) is %s after LeaseLost", got)
	}
	close(gate)
	if errs := <-errc; len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := rn.active("f2"); got != "inactive" {
		t.Errorf("f2 (StopOnDisconnect), started while the lease was lost, is %s", got)
	}
	if got := rn.active("g"); got != "inactive" {
		t.Errorf("g was started after the lease was lost: %s", got)
	}
	if calls := strings.Join(rn.callLog(), ", "); strings.Contains(calls, "start g") {
		t.Errorf("runner calls: %s", calls)
	}
	// The next round sees the loss: f2 counts as stopped.
	a.mu.Lock()
	lost, js := a.leaseLost, a.loaded["f2"].jobState
	a.mu.Unlock()
	if !lost {
		t.Error("leaseLost cleared by the round that saw the loss")
	}
	if acts := render(plan(planInput{LeaseLost: lost, Loaded: map[string]loadedUnit{"f2": fencedRec("h1", js)},
		Schedule: []store.ScheduleEntry{sched("f2", "h1", launched)}})); !slices.Equal(acts, []string{"mark-stopped f2"}) {
		t.Errorf("next round without a lease: %q", acts)
	}
}

// A failed action ends its unit's round: the later actions on it are
// skipped, those on other units go on, and the errors are reported.
func TestExecuteSkipsAfterAFailure(t *testing.T) {
	ctx := context.Background()
	rn := newFakeRunner()
	var mu sync.Mutex
	var stops []string
	a := execAgent(rn, &stops, &mu)
	for _, n := range []string{"r", "x"} {
		if err := rn.Load(ctx, runner.Unit{Name: n, Hash: "h1"}); err != nil {
			t.Fatal(err)
		}
		a.loaded[n] = rec("h1", launched)
	}
	boom := errors.New("boom")
	rn.fail["unload r"] = boom // the replacement of r fails
	rn.fail["load n"] = boom   // the new unit n does not load
	in := planInput{HaveLease: true,
		Schedule: []store.ScheduleEntry{sched("r", "h2", launched), sched("n", "h1", launched), sched("ok", "h1", launched)},
		Loaded:   map[string]loadedUnit{"r": rec("h1", launched), "x": rec("h1", launched)},
		Files:    files(file("r", "h2"), file("n", "h1"), file("ok", "h1"))}
	errs := a.execute(ctx, plan(in), 0)
	if len(errs) != 2 || !errors.Is(errs[0], boom) || !errors.Is(errs[1], boom) {
		t.Fatalf("errors %v, want the unload of r and the load of n", errs)
	}
	want := []string{"load r", "load x", "unload x", "load n", "load ok", "unload r", "start ok"}
	if got := rn.callLog(); !slices.Equal(got, want) {
		t.Errorf("runner calls %q, want %q", got, want)
	}
	mu.Lock()
	if !slices.Equal(stops, []string{"x", "r"}) {
		t.Errorf("BeforeStop calls %q", stops)
	}
	mu.Unlock()
	var names []string
	for _, u := range a.Units() {
		names = append(names, u.Name+"@"+u.Hash)
	}
	if !slices.Equal(names, []string{"ok@h1", "r@h1"}) {
		t.Errorf("Units() = %q, want ok, and r still at its old hash", names)
	}
}

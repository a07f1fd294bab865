package timerd

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// fakeStore is the cluster store: unit files and timer records, with the
// real RecordTrigger's compare-and-swap semantics.
type fakeStore struct {
	mu     sync.Mutex
	units  map[string]fleet.Unit
	timers map[string]store.TimerRecord
	writes int
}

func newFakeStore() *fakeStore {
	return &fakeStore{units: map[string]fleet.Unit{}, timers: map[string]store.TimerRecord{}}
}

func (s *fakeStore) Unit(ctx context.Context, name string) (fleet.Unit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[name]
	if !ok {
		return fleet.Unit{}, store.ErrNotFound
	}
	return u, nil
}

func (s *fakeStore) Timer(ctx context.Context, name string) (store.TimerRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.timers[name]
	return r, ok, nil
}

func (s *fakeStore) RecordTrigger(ctx context.Context, r store.TimerRecord, prev time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.timers[r.Timer]
	if !cur.LastTrigger.Equal(prev) || !r.LastTrigger.After(cur.LastTrigger) {
		return false, nil
	}
	s.timers[r.Timer] = r
	s.writes++
	return true, nil
}

func (s *fakeStore) UpdateTimer(ctx context.Context, r store.TimerRecord) (store.TimerRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.timers[r.Timer]
	r.LastTrigger = cur.LastTrigger
	if ok && cur.Activates == r.Activates && cur.Machine == r.Machine && cur.Next.Equal(r.Next) {
		return cur, nil
	}
	s.timers[r.Timer] = r
	s.writes++
	return r, nil
}

// fakeRunner is a machine's runner: states set by the test; Start records
// the call.
type fakeRunner struct {
	mu       sync.Mutex
	watch    chan struct{}
	states   map[string]runner.State
	starts   []start
	triggers map[string]time.Time
	now      func() time.Time
}

type start struct {
	unit string
	at   time.Time
}

func newFakeRunner(now func() time.Time) *fakeRunner {
	return &fakeRunner{states: map[string]runner.State{}, triggers: map[string]time.Time{}, now: now}
}

func (r *fakeRunner) States() map[string]runner.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]runner.State, len(r.states))
	for k, v := range r.states {
		out[k] = v
	}
	return out
}

func (r *fakeRunner) Start(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.states[name]; !ok {
		return runner.ErrNotLoaded
	}
	r.starts = append(r.starts, start{name, r.now()})
	return nil
}

func (r *fakeRunner) SetTrigger(name string, next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.triggers[name] = next
}

// watchingRunner is a fakeRunner that announces changes (Watch).
type watchingRunner struct{ *fakeRunner }

func (r watchingRunner) Watch() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watch == nil {
		r.watch = make(chan struct{})
	}
	return r.watch
}

// set changes a state and announces it.
func (r watchingRunner) set(name string, st runner.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[name] = st
	if r.watch != nil {
		close(r.watch)
		r.watch = nil
	}
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *clock) set(t time.Time)         { c.t = t }
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.000", s)
	if err != nil {
		panic(err)
	}
	return t
}

func mkUnit(t *testing.T, name, body string) fleet.Unit {
	t.Helper()
	opts, err := unitfile.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Unit{Name: name, Options: opts, Hash: unitfile.Hash(opts), DesiredState: fleet.JobStateLaunched}
}

// machine is a Driver with its runner, the timer and its service loaded,
// the timer active since activated.
func machine(t *testing.T, st *fakeStore, c *clock, id string, tm fleet.Unit, svc string, activated time.Time) (*Driver, *fakeRunner) {
	rn := newFakeRunner(c.now)
	rn.states[tm.Name] = runner.State{LoadState: "loaded", ActiveState: "active", SubState: "waiting", Since: activated, Hash: tm.Hash}
	if svc != "" {
		rn.states[svc] = runner.State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}
	}
	return New(Config{Store: st, Runner: rn, MachineID: id, Booted: activated, Now: c.now}), rn
}

func TestCalendarTimerFires(t *testing.T) {
	ctx := t.Context()
	st := newFakeStore()
	tm := mkUnit(t, "tick.timer", "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n")
	st.units[tm.Name] = tm
	c := &clock{at("2026-12-03 10:00:00.500")}
	d, rn := machine(t, st, c, "m1", tm, "tick.service", at("2026-12-03 10:00:00.300"))

	if w := d.Round(ctx); w != Poll {
		t.Errorf("wait %v, want the poll cap %v", w, Poll)
	}
	if len(rn.starts) != 0 {
		t.Fatalf("fired early: %v", rn.starts)
	}
	rec := st.timers[tm.Name]
	if rec.Activates != "tick.service" || rec.Machine != "m1" || !rec.Next.Equal(at("2026-12-03 10:00:02.000")) || !rec.LastTrigger.IsZero() {
		t.Fatalf("record %+v", rec)
	}
	if got := rn.triggers[tm.Name]; !got.Equal(rec.Next) {
		t.Errorf("runner's trigger %v, want %v", got, rec.Next)
	}
	c.set(at("2026-12-03 10:00:01.500"))
	if w := d.Round(ctx); w != 500*time.Millisecond {
		t.Errorf("wait %v, want 500ms (to the next slot)", w)
	}
	c.set(at("2026-12-03 10:00:02.000"))
	d.Round(ctx)
	if len(rn.starts) != 1 || rn.starts[0].unit != "tick.service" {
		t.Fatalf("starts %v", rn.starts)
	}
	rec = st.timers[tm.Name]
	if !rec.LastTrigger.Equal(at("2026-12-03 10:00:02.000")) || !rec.Next.Equal(at("2026-12-03 10:00:04.000")) {
		t.Fatalf("record after firing %+v", rec)
	}
	writes := st.writes
	c.advance(300 * time.Millisecond)
	d.Round(ctx)
	if len(rn.starts) != 1 {
		t.Fatalf("fired a slot twice: %v", rn.starts)
	}
	if st.writes != writes {
		t.Errorf("a round without change wrote the record")
	}
	// Slots missed while fleetd was busy collapse into one firing.
	c.set(at("2026-12-03 10:00:09.100"))
	d.Round(ctx)
	if len(rn.starts) != 2 || !st.timers[tm.Name].LastTrigger.Equal(at("2026-12-03 10:00:08.000")) {
		t.Fatalf("after a gap: starts %v, record %+v", rn.starts, st.timers[tm.Name])
	}
	// Stopped, the timer is forgotten; nothing fires.
	rn.states[tm.Name] = runner.State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead", Hash: tm.Hash}
	c.set(at("2026-12-03 10:00:20.000"))
	d.Round(ctx)
	if len(rn.starts) != 2 || len(d.timers) != 0 {
		t.Fatalf("a stopped timer fired: %v", rn.starts)
	}
}

// Two machines both believe they run the timer (a failover, a partition):
// with a simulated clock and rounds in random order, every slot fires
// exactly once in all.
func TestTimerFiresOncePerSlotAcrossMachines(t *testing.T) {
	ctx := t.Context()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		st := newFakeStore()
		tm := mkUnit(t, "tick.timer", "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n")
		st.units[tm.Name] = tm
		start := at("2026-12-03 10:00:00.000")
		c := &clock{start}
		var ds []*Driver
		var rns []*fakeRunner
		for i := range 3 {
			d, rn := machine(t, st, c, string(rune('a'+i)), tm, "tick.service", start.Add(time.Duration(i)*time.Second))
			ds, rns = append(ds, d), append(rns, rn)
		}
		for range 400 {
			c.advance(time.Duration(rng.IntN(900)) * time.Millisecond)
			for _, i := range rng.Perm(len(ds)) {
				if rng.IntN(4) == 0 {
					continue // this machine's round comes later
				}
				ds[i].Round(ctx)
			}
		}
		for _, d := range ds {
			d.Round(ctx)
		}
		fired := 0
		for _, rn := range rns {
			fired += len(rn.starts)
		}
		last := st.timers[tm.Name].LastTrigger
		slots := int(last.Sub(start.Add(2*time.Second))/(2*time.Second)) + 1
		if fired > slots {
			t.Fatalf("seed %d: %d firings for %d slots up to %v", seed, fired, slots, last)
		}
		if fired == 0 || c.t.Sub(last) > 2*time.Second {
			t.Fatalf("seed %d: last trigger %v at %v, %d firings", seed, last, c.t, fired)
		}
	}
}

func TestTimerWaitsForItsUnit(t *testing.T) {
	ctx := t.Context()
	st := newFakeStore()
	tm := mkUnit(t, "tick.timer", "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\nUnit=work.service\n")
	st.units[tm.Name] = tm
	c := &clock{at("2026-12-03 10:00:02.000")}
	d, rn := machine(t, st, c, "m1", tm, "", at("2026-12-03 10:00:00.300"))
	if w := d.Round(ctx); w != blockedPoll || len(rn.starts) != 0 || !st.timers[tm.Name].LastTrigger.IsZero() {
		t.Fatalf("wait %v, starts %v, record %+v", w, rn.starts, st.timers[tm.Name])
	}
	rn.states["work.service"] = runner.State{LoadState: "loaded", ActiveState: "inactive"}
	c.advance(100 * time.Millisecond)
	d.Round(ctx)
	if len(rn.starts) != 1 || rn.starts[0].unit != "work.service" || !st.timers[tm.Name].LastTrigger.Equal(at("2026-12-03 10:00:02.000")) {
		t.Fatalf("starts %v, record %+v", rn.starts, st.timers[tm.Name])
	}
}

func TestMonotonicTimers(t *testing.T) {
	ctx := t.Context()
	st := newFakeStore()
	tm := mkUnit(t, "mono.timer", "[Timer]\nOnBootSec=5s\nOnUnitActiveSec=10s\nAccuracySec=1ms\n")
	st.units[tm.Name] = tm
	boot := at("2026-12-03 10:00:00.000")
	c := &clock{boot.Add(time.Second)}
	d, rn := machine(t, st, c, "m1", tm, "mono.service", boot)
	d.Round(ctx)
	if next := st.timers[tm.Name].Next; !next.Equal(boot.Add(5 * time.Second)) {
		t.Fatalf("next %v, want boot+5s", next)
	}
	c.set(boot.Add(5 * time.Second))
	d.Round(ctx)
	if len(rn.starts) != 1 {
		t.Fatalf("OnBootSec: starts %v", rn.starts)
	}
	if next := st.timers[tm.Name].Next; !next.Equal(boot.Add(15 * time.Second)) {
		t.Fatalf("next %v, want 10s after the start", next)
	}
	// The service runs (a oneshot goes activating, then inactive).
	rn.states["mono.service"] = runner.State{LoadState: "loaded", ActiveState: "activating", Since: boot.Add(5 * time.Second)}
	c.set(boot.Add(6 * time.Second))
	d.Round(ctx)
	rn.states["mono.service"] = runner.State{LoadState: "loaded", ActiveState: "inactive", Since: boot.Add(7 * time.Second)}
	c.set(boot.Add(15 * time.Second))
	d.Round(ctx)
	if len(rn.starts) != 2 {
		t.Fatalf("OnUnitActiveSec: starts %v", rn.starts)
	}
}

// RandomizedDelaySec= delays a slot by the same amount on every machine;
// Persistent=true fires a slot missed while no machine ran the timer.
func TestPersistentAndRandomized(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		persistent bool
		fires      int
	}{{true, 1}, {false, 0}} {
		st := newFakeStore()
		body := "[Timer]\nOnCalendar=*-*-* 03:00:00\nAccuracySec=1ms\n"
		if tc.persistent {
			body += "Persistent=true\n"
		}
		tm := mkUnit(t, "daily.timer", body)
		st.units[tm.Name] = tm
		st.timers[tm.Name] = store.TimerRecord{Timer: tm.Name, LastTrigger: at("2026-12-02 03:00:00.000")}
		// The timer comes up again at 05:00, after the 03:00 slot.
		c := &clock{at("2026-12-03 05:00:00.000")}
		d, rn := machine(t, st, c, "m2", tm, "daily.service", c.t)
		d.Round(ctx)
		if len(rn.starts) != tc.fires {
			t.Errorf("Persistent=%v: %d firings, want %d", tc.persistent, len(rn.starts), tc.fires)
		}
	}

	st := newFakeStore()
	tm := mkUnit(t, "rnd.timer", "[Timer]\nOnCalendar=hourly\nRandomizedDelaySec=30min\nAccuracySec=1ms\n")
	st.units[tm.Name] = tm
	c := &clock{at("2026-12-03 10:10:00.000")}
	d1, _ := machine(t, st, c, "m1", tm, "rnd.service", c.t)
	d1.Round(ctx)
	n1 := st.timers[tm.Name].Next
	delete(st.timers, tm.Name)
	d2, _ := machine(t, st, c, "m2", tm, "rnd.service", c.t)
	d2.Round(ctx)
	n2 := st.timers[tm.Name].Next
	if !n1.Equal(n2) || n1.Before(at("2026-12-03 11:00:00.000")) || !n1.Before(at("2026-12-03 11:30:00.000")) {
		t.Errorf("randomized next: %v on m1, %v on m2", n1, n2)
	}
}

// Without a runner that hands out its definitions, the unit file comes
// from the store; a timer that does not parse is left alone.
func TestDefinitionFromStoreAndBadTimer(t *testing.T) {
	ctx := t.Context()
	st := newFakeStore()
	good := mkUnit(t, "a.timer", "[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n")
	bad := mkUnit(t, "b.timer", "[Timer]\nOnCalendar=*:*:0/x\n")
	st.units[good.Name], st.units[bad.Name] = good, bad
	c := &clock{at("2026-12-03 10:00:02.000")}
	d, rn := machine(t, st, c, "m1", good, "a.service", at("2026-12-03 10:00:00.000"))
	rn.states[bad.Name] = runner.State{LoadState: "loaded", ActiveState: "active", Hash: bad.Hash, Since: at("2026-12-03 10:00:00.000")}
	rn.states["b.service"] = runner.State{LoadState: "loaded", ActiveState: "inactive"}
	d.Round(ctx)
	if len(rn.starts) != 1 || rn.starts[0].unit != "a.service" {
		t.Fatalf("starts %v", rn.starts)
	}
	if _, ok := st.timers[bad.Name]; ok {
		t.Errorf("a timer that does not parse got a record")
	}
	if err := d.timers[bad.Name].parseErr; err == nil || !strings.Contains(err.Error(), "offset") {
		t.Errorf("parse error %v", err)
	}
}

func TestSeed(t *testing.T) {
	if a := "a.timer"; Seed(a) == Seed("b.timer") || Seed(a) != Seed(strings.Clone(a)) {
		t.Error("Seed is not a hash of the name")
	}
}

// Run looks at a timer as soon as the runner says it started, not at the
// next poll: a slot soon after the start is on time.
func TestRunWakesOnRunnerChange(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st := newFakeStore()
	tm := mkUnit(t, "soon.timer", "[Timer]\nOnActiveSec=100ms\nAccuracySec=1ms\n")
	st.units[tm.Name] = tm
	rn := watchingRunner{newFakeRunner(time.Now)}
	rn.states["soon.service"] = runner.State{LoadState: "loaded", ActiveState: "inactive"}
	d := New(Config{Store: st, Runner: rn, MachineID: "m1"})
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	time.Sleep(200 * time.Millisecond) // the first round saw no timer: it sleeps Poll
	activated := time.Now()
	rn.set(tm.Name, runner.State{LoadState: "loaded", ActiveState: "active", Since: activated, Hash: tm.Hash})
	deadline := time.Now().Add(5 * time.Second)
	for {
		rn.mu.Lock()
		n := len(rn.starts)
		var at time.Time
		if n > 0 {
			at = rn.starts[0].at
		}
		rn.mu.Unlock()
		if n > 0 {
			if late := at.Sub(activated.Add(100 * time.Millisecond)); late < 0 || late > 300*time.Millisecond {
				t.Errorf("fired %v after its slot", late)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never fired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

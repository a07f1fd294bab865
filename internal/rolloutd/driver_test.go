package rolloutd_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// The first round starts the first batch: the record and the target's unit
// file are written together; the other instances are not touched; a round
// that changes nothing writes nothing.
func TestRoundStartsFirstBatch(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	if got := e.unit(tmplName); got.Hash != f.h2 {
		t.Fatalf("template at %s after StartRollout, want v2 %s", got.Hash, f.h2)
	}
	web2, web3 := e.modRev(instance(2)), e.modRev(instance(3))

	e.round()

	rec := e.record(tmplName)
	r := rec.Rollout
	if r.Phase != rollout.PhaseRunning {
		t.Fatalf("phase %s, want running", r.Phase)
	}
	if got, want := statuses(r), "web@1.service=updating web@2.service=pending web@3.service=pending"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	if tg := target(t, r, instance(1)); !tg.Started.Equal(t0) || !tg.HealthySince.IsZero() || tg.Machine != "" || tg.Surge != "" {
		t.Errorf("web@1 = %+v; want started at %v, not healthy yet, no surge", tg, t0)
	}
	u := e.unit(instance(1))
	if u.Hash != f.h2 || !reflect.DeepEqual(u.Options, webOptions(2)) || unitfile.Hash(u.Options) != f.h2 {
		t.Errorf("web@1 record = %+v; want v2's file (%s)", u, f.h2)
	}
	if u.DesiredState != fleet.JobStateLaunched {
		t.Errorf("web@1 desired state %q, want launched (kept)", u.DesiredState)
	}
	if u2 := e.unit(instance(2)); u2.Hash != f.h1 || e.modRev(instance(2)) != web2 || e.modRev(instance(3)) != web3 {
		t.Errorf("web@2/web@3 were written: web@2 at %s", u2.Hash)
	}

	// Nothing changed: no write.
	e.round()
	if again := e.record(tmplName); again.ModRev != rec.ModRev {
		t.Errorf("a round that changed nothing wrote the record (mod rev %d -> %d)", rec.ModRev, again.ModRev)
	}
}

// The health gate: web@1 reported healthy at v2 (state and endpoint) for
// MinHealthyTime becomes updated and the next batch starts.
func TestHealthGatePromotesAndStartsNextBatch(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	e.round()

	// Still at v1 (the agent has not replaced it yet): not healthy.
	e.clk.Advance(minHealthy)
	e.round()
	r := e.record(tmplName).Rollout
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetUpdating || !tg.HealthySince.IsZero() {
		t.Fatalf("web@1 still at v1 = %+v; want updating, not healthy", tg)
	}

	// The agent replaced it: healthy at v2 from now.
	e.healthy(instance(1), "m1", f.h2)
	seen := e.clk.Now()
	e.round()
	r = e.record(tmplName).Rollout
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetUpdating || !tg.HealthySince.Equal(seen) {
		t.Fatalf("web@1 first seen healthy = %+v; want updating, healthy since %v", tg, seen)
	}
	if u := e.unit(instance(2)); u.Hash != f.h1 {
		t.Fatalf("web@2 moved to %s while web@1 was not yet healthy for long enough", u.Hash)
	}

	e.clk.Advance(minHealthy)
	e.round()
	r = e.record(tmplName).Rollout
	if got, want := statuses(r), "web@1.service=updated web@2.service=updating web@3.service=pending"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	if r.Batches != 1 {
		t.Errorf("batches %d, want 1", r.Batches)
	}
	if tg := target(t, r, instance(2)); !tg.Started.Equal(e.clk.Now()) {
		t.Errorf("web@2 started %v, want %v", tg.Started, e.clk.Now())
	}
	if u := e.unit(instance(2)); u.Hash != f.h2 || u.DesiredState != fleet.JobStateLaunched {
		t.Errorf("web@2 record = %+v; want v2, launched", u)
	}
	if u := e.unit(instance(3)); u.Hash != f.h1 {
		t.Errorf("web@3 at %s, want v1", u.Hash)
	}

	// And so on to the end.
	for i := 2; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h2)
		e.round()
		e.clk.Advance(minHealthy)
		e.round()
	}
	r = e.record(tmplName).Rollout
	if r.Phase != rollout.PhaseDone || r.Batches != 3 {
		t.Fatalf("phase %s after %d batches (%s), want done after 3", r.Phase, r.Batches, statuses(r))
	}
	// A finished rollout is not written again.
	rev := e.record(tmplName).ModRev
	e.clk.Advance(deadline)
	e.round()
	if got := e.record(tmplName).ModRev; got != rev {
		t.Errorf("a done rollout was written again")
	}
}

// A state at v2, active and running, whose [X-Service] endpoint is not
// registered (on its own machine) is not healthy; at the deadline the
// rollout fails with a message naming the endpoint.
func TestMissingEndpointFailsAtDeadline(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(2, rollout.Spec{MaxParallel: 1})
	e.round()
	e.report(instance(1), "m1", f.h2, "active", "running")
	e.register(instance(1), "m2") // another machine's endpoint does not count
	e.register(instance(2), "m1") // nor another unit's
	e.clk.Advance(minHealthy)
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r := e.record(tmplName).Rollout
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetUpdating || !tg.HealthySince.IsZero() {
		t.Fatalf("web@1 without its endpoint = %+v; want updating, not healthy", tg)
	}
	if u := e.unit(instance(2)); u.Hash != f.h1 {
		t.Fatalf("web@2 moved to %s", u.Hash)
	}

	e.clk.Advance(deadline)
	e.round()
	r = e.record(tmplName).Rollout
	if r.Phase != rollout.PhaseFailed {
		t.Fatalf("phase %s at the deadline, want failed", r.Phase)
	}
	tg := target(t, r, instance(1))
	if tg.Status != rollout.TargetFailed {
		t.Fatalf("web@1 %s, want failed", tg.Status)
	}
	for _, want := range []string{instance(1), "health checks failing", "endpoint web:8080 not registered", "not healthy after"} {
		if !strings.Contains(tg.Message, want) {
			t.Errorf("failure message %q does not say %q", tg.Message, want)
		}
	}
	if r.Reason != tg.Message {
		t.Errorf("reason %q, want the target's message %q", r.Reason, tg.Message)
	}
	if u := e.unit(instance(2)); u.Hash != f.h1 || target(t, r, instance(2)).Status != rollout.TargetPending {
		t.Errorf("web@2 touched by a failed rollout: %s", u.Hash)
	}
	if u := e.unit(tmplName); u.Hash != f.h2 {
		t.Errorf("template at %s without AutoRevert, want v2 left", u.Hash)
	}
}

// A target that fails at v2 with AutoRevert: phase reverting, the template
// and the target's record back to v1 in the same write; once healthy at v1
// again, reverted.
func TestFailureAutoReverts(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1, AutoRevert: true})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	e.round()
	e.report(instance(1), "m1", f.h2, "failed", "exit-code")
	e.clk.Advance(minHealthy)
	e.round()

	r := e.record(tmplName).Rollout
	if r.Phase != rollout.PhaseReverting {
		t.Fatalf("phase %s, want reverting", r.Phase)
	}
	if !strings.Contains(r.Reason, "web@1.service: failed (exit-code)") {
		t.Errorf("reason %q does not name the failure", r.Reason)
	}
	if got, want := statuses(r), "web@1.service=reverting web@2.service=pending web@3.service=pending"; got != want {
		t.Errorf("targets %s, want %s", got, want)
	}
	tmpl := e.unit(tmplName)
	if tmpl.Hash != f.h1 || !reflect.DeepEqual(tmpl.Options, webOptions(1)) || tmpl.DesiredState != fleet.JobStateInactive {
		t.Errorf("template = %+v; want v1's file back (SetFile), desired state kept", tmpl)
	}
	u := e.unit(instance(1))
	if u.Hash != f.h1 || !reflect.DeepEqual(u.Options, webOptions(1)) || u.DesiredState != fleet.JobStateLaunched {
		t.Errorf("web@1 = %+v; want v1's file back, launched", u)
	}
	for i := 2; i <= 3; i++ {
		if u := e.unit(instance(i)); u.Hash != f.h1 {
			t.Errorf("%s at %s, want v1 (never moved)", u.Name, u.Hash)
		}
	}

	// Back at v1 and healthy: reverted.
	e.healthy(instance(1), "m1", f.h1)
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r = e.record(tmplName).Rollout
	if r.Phase != rollout.PhaseReverted {
		t.Fatalf("phase %s (%s), want reverted", r.Phase, statuses(r))
	}
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetReverted {
		t.Errorf("web@1 %s, want reverted", tg.Status)
	}
}

// A deposed leader's round fails with ErrNotLeader and writes nothing.
func TestDeposedLeaderWritesNothing(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1})
	e.round()
	// web@1 is healthy for long enough: the next round would promote it
	// and start web@2 (a record write and a unit write).
	e.healthy(instance(1), "m1", f.h2)
	e.round()
	e.clk.Advance(minHealthy)

	before := e.record(tmplName)
	units := map[string]int64{}
	for _, n := range []string{tmplName, instance(1), instance(2), instance(3)} {
		units[n] = e.modRev(n)
	}
	if err := e.lead.Resign(e.ctx); err != nil {
		t.Fatal(err)
	}
	err := e.drv.Round(e.ctx, e.lead)
	if !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("round of a deposed leader: %v, want ErrNotLeader", err)
	}
	after := e.record(tmplName)
	if after.ModRev != before.ModRev || !reflect.DeepEqual(after.Rollout, before.Rollout) {
		t.Errorf("a deposed leader wrote the record: %s -> %s", statuses(before.Rollout), statuses(after.Rollout))
	}
	for n, rev := range units {
		if got := e.modRev(n); got != rev {
			t.Errorf("a deposed leader wrote %s (mod rev %d -> %d)", n, rev, got)
		}
	}
	if u := e.unit(instance(2)); u.Hash != f.h1 {
		t.Errorf("web@2 at %s, want v1", u.Hash)
	}

	// A new leader carries on where the old one stopped (no state in the
	// driver: the same Driver value with the new leadership).
	lead2, err := e.st.Campaign(e.ctx, "m2", leaderTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lead2.Resign(context.Background()) })
	if err := e.drv.Round(e.ctx, lead2); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(e.record(tmplName).Rollout), "web@1.service=updated web@2.service=updating web@3.service=pending"; got != want {
		t.Errorf("after the new leader's round: %s, want %s", got, want)
	}
}

// The API pauses the rollout between rounds: the batch in flight is still
// watched, no new one starts, and the pause is not overwritten; resumed, the
// next batch starts.
func TestPauseBetweenRoundsIsRespected(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1})
	e.round()

	rec := e.record(tmplName)
	paused, err := rollout.Pause(rec.Rollout, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdateRollout(e.ctx, store.RolloutRecord{Rollout: paused, ModRev: rec.ModRev}); err != nil {
		t.Fatal(err)
	}

	e.healthy(instance(1), "m1", f.h2)
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r := e.record(tmplName).Rollout
	if r.Phase != rollout.PhasePaused {
		t.Fatalf("phase %s, want paused (not overwritten)", r.Phase)
	}
	if got, want := statuses(r), "web@1.service=updated web@2.service=pending web@3.service=pending"; got != want {
		t.Fatalf("targets %s, want %s (the batch in flight finishes, none starts)", got, want)
	}
	if u := e.unit(instance(2)); u.Hash != f.h1 {
		t.Fatalf("web@2 moved to %s while paused", u.Hash)
	}
	rev := e.record(tmplName).ModRev
	e.clk.Advance(deadline)
	e.round()
	if got := e.record(tmplName); got.ModRev != rev || got.Rollout.Phase != rollout.PhasePaused {
		t.Fatalf("an idle paused rollout was written (phase %s)", got.Rollout.Phase)
	}

	rec = e.record(tmplName)
	resumed, err := rollout.Resume(rec.Rollout, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdateRollout(e.ctx, store.RolloutRecord{Rollout: resumed, ModRev: rec.ModRev}); err != nil {
		t.Fatal(err)
	}
	e.round()
	if got, want := statuses(e.record(tmplName).Rollout), "web@1.service=updated web@2.service=updating web@3.service=pending"; got != want {
		t.Errorf("after resume: %s, want %s", got, want)
	}
	if u := e.unit(instance(2)); u.Hash != f.h2 {
		t.Errorf("web@2 at %s after resume, want v2", u.Hash)
	}
}

// The API pauses the rollout while a round is under way (after the driver
// read the record, before it writes): the driver's write loses the
// compare-and-swap, the round does not fail, nothing of the step is
// written (not the record, not the unit file), and the next round sees the
// pause.
func TestPauseDuringRoundIsAConflict(t *testing.T) {
	var e *env
	var once sync.Once
	var asked [][]string
	surge := func(ctx context.Context, units []string) (map[string]string, error) {
		asked = append(asked, slices.Clone(units))
		once.Do(func() {
			rec, err := e.st.Rollout(ctx, tmplName)
			if err != nil {
				t.Error(err)
				return
			}
			p, err := rollout.Pause(rec.Rollout, e.clk.Now())
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := e.st.UpdateRollout(ctx, store.RolloutRecord{Rollout: p, ModRev: rec.ModRev}); err != nil {
				t.Error(err)
			}
		})
		return nil, nil
	}
	e = newEnv(t, surge)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1, MaxSurge: 1})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	web1 := e.modRev(instance(1))

	e.round() // the pause lands between the read and the write
	if len(asked) != 1 {
		t.Fatalf("surge asked %d times, want once (the hook pauses)", len(asked))
	}
	rec := e.record(tmplName)
	if rec.Rollout.Phase != rollout.PhasePaused {
		t.Fatalf("phase %s, want paused (the API's write kept)", rec.Rollout.Phase)
	}
	if got, want := statuses(rec.Rollout), "web@1.service=pending web@2.service=pending web@3.service=pending"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	if got := e.modRev(instance(1)); got != web1 {
		t.Fatalf("web@1 written (at %s) by a step whose record write lost", e.unit(instance(1)).Hash)
	}

	e.clk.Advance(minHealthy)
	e.round()
	again := e.record(tmplName)
	if again.ModRev != rec.ModRev || again.Rollout.Phase != rollout.PhasePaused {
		t.Errorf("next round wrote the paused record (phase %s)", again.Rollout.Phase)
	}
	if got := e.modRev(instance(1)); got != web1 {
		t.Errorf("web@1 written while paused")
	}
}

// A global rollout: the targets are machines; SetHash writes no unit
// record (StartRollout wrote the file, the record pins the machines); a
// target's health is judged on its own machine's state.
func TestGlobalRollout(t *testing.T) {
	e := newEnv(t, nil)
	const name = "agent.service"
	v1, v2 := globalOptions(1), globalOptions(2)
	h1, h2 := unitfile.Hash(v1), unitfile.Hash(v2)
	u1 := fleet.Unit{Name: name, Options: v1, Hash: h1, DesiredState: fleet.JobStateLaunched}
	if _, err := e.st.CreateUnit(e.ctx, u1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecordRevision(e.ctx, name, u1, "admin", t0); err != nil {
		t.Fatal(err)
	}
	e.start(rollout.Spec{Unit: name, Global: true, FromHash: h1, FromRevision: 1, ToHash: h2, ToRevision: 2, MaxParallel: 1},
		[]string{"m1", "m2"},
		fleet.Unit{Name: name, Options: v2, Hash: h2, DesiredState: fleet.JobStateLaunched},
		store.Revision{Unit: name, Revision: 2, Hash: h2, Options: v2, Time: t0})
	e.report(name, "m1", h1, "active", "running")
	e.report(name, "m2", h1, "active", "running")
	file := e.modRev(name)
	noFileWrite := func(when string) {
		t.Helper()
		if got := e.modRev(name); got != file {
			t.Fatalf("%s: units/%s written (mod rev %d -> %d); a global rollout writes only its record", when, name, file, got)
		}
	}

	e.round()
	r := e.record(name).Rollout
	if got, want := statuses(r), "m1=updating m2=pending"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	if h, ok := rollout.Pin(r, "m1"); !ok || h != h2 {
		t.Errorf("m1 pinned to %s, want v2", h)
	}
	if h, ok := rollout.Pin(r, "m2"); !ok || h != h1 {
		t.Errorf("m2 pinned to %s, want v1", h)
	}
	noFileWrite("first batch")

	// A healthy v2 state on the wrong machine does not make m1 healthy.
	e.report(name, "m2", h2, "active", "running")
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	if tg := target(t, e.record(name).Rollout, "m1"); tg.Status != rollout.TargetUpdating || !tg.HealthySince.IsZero() {
		t.Fatalf("m1 with v2 healthy only on m2 = %+v; want updating, not healthy", tg)
	}

	// m1's own state counts.
	e.report(name, "m1", h2, "active", "running")
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r = e.record(name).Rollout
	if got, want := statuses(r), "m1=updated m2=updating"; got != want {
		t.Fatalf("targets %s, want %s", got, want)
	}
	noFileWrite("second batch")

	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r = e.record(name).Rollout
	if r.Phase != rollout.PhaseDone {
		t.Fatalf("phase %s (%s), want done", r.Phase, statuses(r))
	}
	noFileWrite("done")
}

// Surge: the first batch's target gets Machine (where its state runs) and
// Surge (the machine Config.Surge gave); its health is judged on the surge
// machine; once healthy, its old copy is dropped (Machine cleared).
func TestSurge(t *testing.T) {
	var mu sync.Mutex
	var asked [][]string
	surge := func(ctx context.Context, units []string) (map[string]string, error) {
		mu.Lock()
		asked = append(asked, slices.Clone(units))
		mu.Unlock()
		out := map[string]string{}
		for _, u := range units {
			out[u] = "m2"
		}
		return out, nil
	}
	e := newEnv(t, surge)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1, MaxSurge: 1})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}

	e.round()
	if len(asked) != 1 || !slices.Equal(asked[0], []string{instance(1)}) {
		t.Fatalf("surge asked for %v, want [[web@1.service]]", asked)
	}
	r := e.record(tmplName).Rollout
	tg := target(t, r, instance(1))
	if tg.Status != rollout.TargetUpdating || tg.Machine != "m1" || tg.Surge != "m2" {
		t.Fatalf("web@1 = %+v; want updating with Machine m1, Surge m2", tg)
	}
	if rollout.WatchMachine(tg) != "m2" {
		t.Fatalf("watch machine %q, want m2", rollout.WatchMachine(tg))
	}
	if u := e.unit(instance(1)); u.Hash != f.h2 {
		t.Errorf("web@1 record at %s, want v2", u.Hash)
	}
	if tg := target(t, r, instance(2)); tg.Machine != "" || tg.Surge != "" {
		t.Errorf("pending web@2 got a surge placement %+v", tg)
	}

	// A batch in flight: surge is not asked again.
	e.round()
	if len(asked) != 1 {
		t.Errorf("surge asked while a batch is in flight: %v", asked)
	}

	// Healthy at v2 on the old machine: not the one watched.
	e.healthy(instance(1), "m1", f.h2)
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	if tg := target(t, e.record(tmplName).Rollout, instance(1)); tg.Status != rollout.TargetUpdating || !tg.HealthySince.IsZero() {
		t.Fatalf("web@1 healthy only on m1 = %+v; want updating, not healthy", tg)
	}

	// The surge copy on m2, active but its endpoint (on m2) not registered
	// yet: not healthy either.
	e.report(instance(1), "m1", f.h1, "active", "running")
	e.report(instance(1), "m2", f.h2, "active", "running")
	e.round()
	if tg := target(t, e.record(tmplName).Rollout, instance(1)); !tg.HealthySince.IsZero() {
		t.Fatalf("web@1 on m2 without its endpoint = %+v; want not healthy", tg)
	}

	// Registered: healthy, and after MinHealthyTime updated; the old copy
	// goes, the next batch surges too.
	e.register(instance(1), "m2")
	e.round()
	if tg := target(t, e.record(tmplName).Rollout, instance(1)); !tg.HealthySince.Equal(e.clk.Now()) {
		t.Fatalf("web@1 healthy on m2 = %+v; want healthy since now", tg)
	}
	e.clk.Advance(minHealthy)
	e.round()
	r = e.record(tmplName).Rollout
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetUpdated || tg.Machine != "" || tg.Surge != "m2" {
		t.Fatalf("web@1 = %+v; want updated on m2 alone (Machine cleared)", tg)
	}
	if tg := target(t, r, instance(2)); tg.Status != rollout.TargetUpdating {
		t.Errorf("web@2 = %+v; want updating", tg)
	}
}

// Every batch may surge, not only the first: the batch that starts in the
// step that promotes the previous one gets its surge placement too.
func TestSurgeEveryBatch(t *testing.T) {
	var mu sync.Mutex
	var asked [][]string
	surge := func(ctx context.Context, units []string) (map[string]string, error) {
		mu.Lock()
		asked = append(asked, slices.Clone(units))
		mu.Unlock()
		out := map[string]string{}
		for _, u := range units {
			out[u] = "m2"
		}
		return out, nil
	}
	e := newEnv(t, surge)
	f := e.setupWeb(3, rollout.Spec{MaxParallel: 1, MaxSurge: 1})
	for i := 1; i <= 3; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	e.round()
	e.healthy(instance(1), "m2", f.h2)
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	r := e.record(tmplName).Rollout
	if tg := target(t, r, instance(1)); tg.Status != rollout.TargetUpdated || tg.Machine != "" || tg.Surge != "m2" {
		t.Fatalf("web@1 = %+v; want updated on m2 alone", tg)
	}
	if tg := target(t, r, instance(2)); tg.Status != rollout.TargetUpdating || tg.Machine != "m1" || tg.Surge != "m2" {
		t.Errorf("web@2 = %+v; want updating with Machine m1, Surge m2", tg)
	}
	if !slices.ContainsFunc(asked, func(us []string) bool { return slices.Equal(us, []string{instance(2)}) }) {
		t.Errorf("surge asked for %v, never for web@2", asked)
	}
}

// A surge target that fails (not healthy on the surge machine by the
// deadline) with AutoRevert goes back to its old copy alone, judged there.
func TestSurgeFailureRevertsToOldCopy(t *testing.T) {
	surge := func(ctx context.Context, units []string) (map[string]string, error) {
		out := map[string]string{}
		for _, u := range units {
			out[u] = "m2"
		}
		return out, nil
	}
	e := newEnv(t, surge)
	f := e.setupWeb(2, rollout.Spec{MaxParallel: 1, MaxSurge: 1, AutoRevert: true})
	for i := 1; i <= 2; i++ {
		e.healthy(instance(i), "m1", f.h1)
	}
	e.round()
	e.report(instance(1), "m2", f.h2, "activating", "start-pre")
	e.clk.Advance(deadline)
	e.round()
	r := e.record(tmplName).Rollout
	if r.Phase != rollout.PhaseReverting {
		t.Fatalf("phase %s, want reverting", r.Phase)
	}
	if !strings.Contains(r.Reason, "activating start-pre") {
		t.Errorf("reason %q does not give the surge copy's state", r.Reason)
	}
	tg := target(t, r, instance(1))
	if tg.Status != rollout.TargetReverting || tg.Machine != "m1" || tg.Surge != "" || rollout.WatchMachine(tg) != "m1" {
		t.Fatalf("web@1 = %+v; want reverting to its old copy on m1 alone", tg)
	}
	if u := e.unit(instance(1)); u.Hash != f.h1 {
		t.Errorf("web@1 record at %s, want v1", u.Hash)
	}
	// The old copy on m1 is healthy at v1: reverted.
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	if r := e.record(tmplName).Rollout; r.Phase != rollout.PhaseReverted {
		t.Errorf("phase %s (%s), want reverted", r.Phase, statuses(r))
	}
}

// A plain unit is its own only target: its file is written by the driver's
// SetHash, and on a failure with AutoRevert both SetFile and SetHash name
// it in the same step.
func TestPlainUnitAutoRevert(t *testing.T) {
	e := newEnv(t, nil)
	const name = "db.service"
	v1, v2 := plainOptions(1), plainOptions(2)
	h1, h2 := unitfile.Hash(v1), unitfile.Hash(v2)
	u1 := fleet.Unit{Name: name, Options: v1, Hash: h1, DesiredState: fleet.JobStateLaunched}
	if _, err := e.st.CreateUnit(e.ctx, u1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RecordRevision(e.ctx, name, u1, "admin", t0); err != nil {
		t.Fatal(err)
	}
	// As the API does: a plain unit's file is not written at the start.
	e.start(rollout.Spec{Unit: name, FromHash: h1, FromRevision: 1, ToHash: h2, ToRevision: 2, MaxParallel: 1, AutoRevert: true},
		[]string{name}, fleet.Unit{}, store.Revision{Unit: name, Revision: 2, Hash: h2, Options: v2, Time: t0})
	e.report(name, "m1", h1, "active", "running")
	if u := e.unit(name); u.Hash != h1 {
		t.Fatalf("%s at %s after StartRollout, want v1", name, u.Hash)
	}
	e.round()
	if u := e.unit(name); u.Hash != h2 || u.DesiredState != fleet.JobStateLaunched {
		t.Fatalf("%s = %+v after the first round, want v2, launched", name, u)
	}

	e.report(name, "m1", h2, "failed", "exit-code")
	e.clk.Advance(minHealthy)
	e.round()
	r := e.record(name).Rollout
	if r.Phase != rollout.PhaseReverting || target(t, r, name).Status != rollout.TargetReverting {
		t.Fatalf("phase %s (%s), want reverting", r.Phase, statuses(r))
	}
	if u := e.unit(name); u.Hash != h1 || u.DesiredState != fleet.JobStateLaunched {
		t.Fatalf("%s = %+v, want v1 back, launched", name, u)
	}
	e.report(name, "m1", h1, "active", "running")
	e.round()
	e.clk.Advance(minHealthy)
	e.round()
	if r := e.record(name).Rollout; r.Phase != rollout.PhaseReverted {
		t.Errorf("phase %s, want reverted", r.Phase)
	}
}

// A unit record changed by the API after the driver read it (here: its
// desired state, between the driver's read and its write) must not be
// overwritten with the stale copy: the user's change is kept.
func TestSetHashKeepsConcurrentDesiredStateChange(t *testing.T) {
	var e *env
	var once sync.Once
	surge := func(ctx context.Context, units []string) (map[string]string, error) {
		once.Do(func() {
			if err := e.st.SetDesiredState(ctx, instance(1), fleet.JobStateInactive); err != nil {
				t.Error(err)
			}
		})
		return nil, nil
	}
	e = newEnv(t, surge)
	f := e.setupWeb(2, rollout.Spec{MaxParallel: 1, MaxSurge: 1})
	e.round()
	e.round()
	u := e.unit(instance(1))
	if u.DesiredState != fleet.JobStateInactive {
		t.Errorf("web@1 desired state %q (hash %s): the user's stop was overwritten by the driver's stale copy", u.DesiredState, u.Hash)
	}
	if u.Hash != f.h2 {
		t.Errorf("web@1 at %s, want v2 (after a reread)", u.Hash)
	}
}

// A failing health check recorded for the unit on its machine
// (checks/<machine>/<unit>) is what the failure message gives, rather than
// the bare missing endpoint.
func TestRecordedCheckNamedInFailure(t *testing.T) {
	e := newEnv(t, nil)
	f := e.setupWeb(2, rollout.Spec{MaxParallel: 1})
	e.round()
	e.report(instance(1), "m1", f.h2, "active", "running")
	const msg = "web:8080: GET /health: 503 Service Unavailable"
	if err := e.st.PutCheck(e.ctx, e.lease, "m1", instance(1), msg); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutCheck(e.ctx, e.lease, "m2", instance(1), "another machine's check"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(deadline)
	e.round()
	r := e.record(tmplName).Rollout
	tg := target(t, r, instance(1))
	if r.Phase != rollout.PhaseFailed || tg.Status != rollout.TargetFailed {
		t.Fatalf("phase %s, web@1 %s; want failed", r.Phase, tg.Status)
	}
	if !strings.Contains(tg.Message, "health check failing: "+msg) || strings.Contains(tg.Message, "another machine") {
		t.Errorf("failure message %q does not give the check recorded on m1", tg.Message)
	}
}

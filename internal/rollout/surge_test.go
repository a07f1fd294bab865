package rollout

import (
	"maps"
	"testing"
	"time"
)

// pendingAt is a pending target's observation with surge information.
func pendingAt(machine, surgeTo string) Observation {
	o := up(fromHash)
	o.Machine, o.SurgeTo = machine, surgeTo
	return o
}

// Rule 4a: with MaxSurge, a target's new copy starts on SurgeTo beside its
// old copy; healthy, the old copy goes; failed, the new copy goes; moved
// back, the target returns to its old copy alone.
func TestStepSurge(t *testing.T) {
	spec := baseSpec()
	spec.MaxParallel, spec.MaxSurge, spec.AutoRevert = 2, 1, true
	r, err := New(spec, units(3), t0)
	if err != nil {
		t.Fatal(err)
	}
	obs := obsOf(
		"web@1.service", pendingAt("m1", "m3"),
		"web@2.service", pendingAt("m2", "m3"),
		"web@3.service", pendingAt("m3", "m1"),
	)
	r, acts, _ := Step(r, obs, at(0))
	// Two move (MaxParallel 2); only the first surges (MaxSurge 1).
	if got := r.Targets[0]; got.Status != TargetUpdating || got.Machine != "m1" || got.Surge != "m3" {
		t.Fatalf("web@1: %+v, want updating with surge m1 -> m3", got)
	}
	if got := r.Targets[1]; got.Status != TargetUpdating || got.Machine != "" || got.Surge != "" {
		t.Fatalf("web@2: %+v, want updating in place", got)
	}
	if len(acts) != 2 {
		t.Fatalf("actions %v, want two SetHash", acts)
	}
	if got, _ := Placement(r, r.Targets[0]); !maps.Equal(got, map[string]string{"m1": fromHash, "m3": toHash}) {
		t.Errorf("surging placement %v", got)
	}
	if _, ok := Placement(r, r.Targets[1]); ok {
		t.Error("an in-place target has a placement")
	}
	if WatchMachine(r.Targets[0]) != "m3" || WatchMachine(r.Targets[1]) != "" {
		t.Errorf("watch machines %q %q", WatchMachine(r.Targets[0]), WatchMachine(r.Targets[1]))
	}

	// Both healthy for MinHealthyTime: web@1's old copy goes.
	healthy := obsOf("web@1.service", up(toHash), "web@2.service", up(toHash), "web@3.service", pendingAt("m3", "m1"))
	r, _, _ = Step(r, healthy, at(time.Second))
	r, _, _ = Step(r, healthy, at(12*time.Second))
	if got := r.Targets[0]; got.Status != TargetUpdated || got.Machine != "" || got.Surge != "m3" {
		t.Fatalf("web@1 after health: %+v, want updated on m3 alone", got)
	}
	if got, _ := Placement(r, r.Targets[0]); !maps.Equal(got, map[string]string{"m3": toHash}) {
		t.Errorf("updated placement %v", got)
	}
	// The next batch: web@3 surges to m1.
	if got := r.Targets[2]; got.Status != TargetUpdating || got.Machine != "m3" || got.Surge != "m1" {
		t.Fatalf("web@3: %+v, want surging m3 -> m1", got)
	}

	// web@3's new copy fails: it goes, the old one stays; auto-revert.
	r, acts, _ = Step(r, obsOf("web@3.service", crashed(toHash, "boom")), at(13*time.Second))
	if r.Phase != PhaseReverting {
		t.Fatalf("phase %s, want reverting", r.Phase)
	}
	w3 := r.Targets[2]
	if w3.Status != TargetReverting || w3.Machine != "m3" || w3.Surge != "" {
		t.Fatalf("web@3 moved back: %+v, want reverting to its old copy on m3", w3)
	}
	if got, _ := Placement(r, w3); !maps.Equal(got, map[string]string{"m3": fromHash}) {
		t.Errorf("web@3 placement %v", got)
	}
	if WatchMachine(w3) != "m3" {
		t.Errorf("web@3 watched on %q", WatchMachine(w3))
	}
	_ = acts
	// The reverted web@1 (old copy gone) is replaced in place on m3.
	for i := 0; i < 10 && r.Phase == PhaseReverting; i++ {
		r, _, _ = Step(r, allObs(up(fromHash), "web@1.service", "web@2.service", "web@3.service"), at(time.Duration(14+i*11)*time.Second))
	}
	if r.Phase != PhaseReverted {
		t.Fatalf("phase %s (%s), want reverted", r.Phase, Progress(r))
	}
	if got, _ := Placement(r, r.Targets[0]); !maps.Equal(got, map[string]string{"m3": fromHash}) {
		t.Errorf("reverted web@1 placement %v, want m3 at the previous hash", got)
	}
}

func TestValidateSurge(t *testing.T) {
	spec := baseSpec()
	spec.MaxSurge = -1
	if err := Validate(spec, units(1)); err == nil {
		t.Error("negative max-surge accepted")
	}
}

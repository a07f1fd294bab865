package rollout

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// forward lists the status moves Step may make.
var forward = map[TargetStatus][]TargetStatus{
	TargetPending:   {TargetUpdating},
	TargetUpdating:  {TargetUpdated, TargetFailed, TargetReverting},
	TargetUpdated:   {TargetReverting},
	TargetFailed:    {TargetReverting},
	TargetReverting: {TargetReverted, TargetRevertFailed},
}

func allowed(from, to TargetStatus) bool {
	if from == to {
		return true
	}
	for _, s := range forward[from] {
		if s == to {
			return true
		}
	}
	return false
}

// randomObs is a random view of the cluster, biased towards healthy units
// on the hash they were told to run, so rollouts get somewhere.
func randomObs(rng *rand.Rand, r Rollout) map[string]Observation {
	obs := map[string]Observation{}
	for _, t := range r.Targets {
		if rng.IntN(10) == 0 {
			continue // missing
		}
		want := fromHash
		if t.Status == TargetUpdating || t.Status == TargetUpdated || t.Status == TargetFailed {
			want = toHash
		}
		hashes := []string{want, want, want, fromHash, toHash, "", "9999999cccc"}
		o := Observation{Present: rng.IntN(8) != 0, Hash: hashes[rng.IntN(len(hashes))], ChecksPassing: rng.IntN(5) != 0}
		states := [][2]string{{"active", "running"}, {"active", "running"}, {"active", "running"}, {"active", "exited"},
			{"failed", "exit-code"}, {"activating", "start-pre"}, {"inactive", "dead"}, {"active", "reloading"}}
		if rng.IntN(6) == 0 {
			st := states[rng.IntN(len(states))]
			o.ActiveState, o.SubState = st[0], st[1]
		} else {
			o.ActiveState, o.SubState = "active", "running"
		}
		if rng.IntN(3) == 0 {
			o.Detail = "detail"
		}
		obs[t.Name] = o
	}
	return obs
}

// TestStepProperties drives random rollouts with random observations and
// checks Step's invariants at every step.
func TestStepProperties(t *testing.T) {
	const runs = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]int{} // how runs ended, so the generator is known to reach every path
	for run := range runs {
		spec := baseSpec()
		spec.MaxParallel = 1 + rng.IntN(4)
		spec.MinHealthyTime = time.Duration(rng.IntN(4)) * 5 * time.Second
		spec.HealthyDeadline = spec.MinHealthyTime + time.Duration(1+rng.IntN(6))*5*time.Second
		spec.AutoRevert = rng.IntN(2) == 0
		spec.Global = rng.IntN(4) == 0
		names := make([]string, rng.IntN(8))
		for i := range names {
			names[i] = fmt.Sprintf("t%d", i)
		}
		r, err := New(spec, names, t0)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for i := 0; i < 60; i++ {
			now = now.Add(time.Duration(rng.IntN(8)) * time.Second)
			where := fmt.Sprintf("run %d step %d (%s, max %d)", run, i, statusLetters(r), spec.MaxParallel)

			switch rng.IntN(20) {
			case 0:
				if p, err := Pause(r, now); err == nil {
					r = p
				} else if p.Phase != r.Phase {
					t.Fatalf("%s: failed Pause changed phase", where)
				}
			case 1:
				if p, err := Resume(r, now); err == nil {
					r = p
				}
			case 2:
				if rng.IntN(5) == 0 {
					p, err := Abort(r, "stop", now)
					if (err == nil) == r.Phase.Terminal() {
						t.Fatalf("%s: Abort of %s: %v", where, r.Phase, err)
					}
					if err == nil {
						r = p
					}
				}
			}

			obs := randomObs(rng, r)
			before := clone(r)
			next, acts, evs := Step(r, obs, now)
			if !reflect.DeepEqual(before, r) {
				t.Fatalf("%s: Step modified its input", where)
			}
			// Deterministic.
			next2, acts2, evs2 := Step(r, obs, now)
			if !reflect.DeepEqual(next, next2) || !reflect.DeepEqual(acts, acts2) || !reflect.DeepEqual(evs, evs2) {
				t.Fatalf("%s: Step is not deterministic", where)
			}
			// Terminal phases never change.
			if r.Phase.Terminal() {
				if !reflect.DeepEqual(next, r) || acts != nil || evs != nil {
					t.Fatalf("%s: terminal %s changed", where, r.Phase)
				}
				break
			}
			checkStep(t, where, r, next, acts, now)
			if r.Phase == PhaseReverting && next.Phase == PhaseFailed {
				seen["revert failed"]++
			}
			r = next
			// Never more than MaxParallel in flight.
			if _, inFlight, _, _, _ := r.Counts(); inFlight > spec.MaxParallel {
				t.Fatalf("%s: %d in flight (%s)", where, inFlight, statusLetters(r))
			}
		}
		seen[string(r.Phase)]++
	}
	t.Logf("runs ended: %v", seen)
	for _, k := range []string{"done", "failed", "reverted", "aborted", "revert failed"} {
		if seen[k] == 0 {
			t.Errorf("no run ended %s: the generator misses a path", k)
		}
	}
}

// checkStep checks one step from r to next with actions acts.
func checkStep(t *testing.T, where string, r, next Rollout, acts []Action, now time.Time) {
	t.Helper()
	if len(next.Targets) != len(r.Targets) {
		t.Fatalf("%s: %d targets became %d", where, len(r.Targets), len(next.Targets))
	}
	if next.Spec != r.Spec || !next.Created.Equal(r.Created) {
		t.Fatalf("%s: Spec or Created changed", where)
	}
	changed := !reflect.DeepEqual(next.Targets, r.Targets) || next.Phase != r.Phase || next.Reason != r.Reason || next.Batches != r.Batches
	if changed && !next.Updated.Equal(now) {
		t.Fatalf("%s: changed but Updated = %v, want %v", where, next.Updated, now)
	}
	if !changed && len(acts) == 0 && !next.Updated.Equal(r.Updated) {
		t.Fatalf("%s: nothing changed but Updated moved", where)
	}
	if next.Batches < r.Batches {
		t.Fatalf("%s: Batches went from %d to %d", where, r.Batches, next.Batches)
	}
	moved := map[string]TargetStatus{}
	for i, nt := range next.Targets {
		ot := r.Targets[i]
		if nt.Name != ot.Name {
			t.Fatalf("%s: target %d renamed %s -> %s", where, i, ot.Name, nt.Name)
		}
		if !allowed(ot.Status, nt.Status) {
			t.Fatalf("%s: %s moved %s -> %s", where, nt.Name, ot.Status, nt.Status)
		}
		if nt.Status != ot.Status && (nt.Status == TargetUpdating || nt.Status == TargetReverting) {
			moved[nt.Name] = nt.Status
			if !nt.Started.Equal(now) || !nt.HealthySince.IsZero() {
				t.Fatalf("%s: %s moved without Started=now and HealthySince zero", where, nt.Name)
			}
		}
		if nt.Status == TargetFailed && ot.Status != TargetFailed && nt.Message == "" {
			t.Fatalf("%s: %s failed without a message", where, nt.Name)
		}
	}
	sets := map[string]bool{}
	setFiles := 0
	for _, a := range acts {
		switch a.Kind {
		case SetHash:
			st, ok := moved[a.Target]
			if !ok {
				t.Fatalf("%s: SetHash %s whose status did not just become updating or reverting", where, a.Target)
			}
			if sets[a.Target] {
				t.Fatalf("%s: two SetHash for %s", where, a.Target)
			}
			sets[a.Target] = true
			want := r.ToHash
			if st == TargetReverting {
				want = r.FromHash
			}
			if a.Hash != want {
				t.Fatalf("%s: SetHash %s %s, want %s", where, a.Target, a.Hash, want)
			}
		case SetFile:
			setFiles++
			if r.Phase == PhaseReverting || next.Phase != PhaseReverting && next.Phase != PhaseReverted {
				t.Fatalf("%s: SetFile going %s -> %s", where, r.Phase, next.Phase)
			}
			if a.Target != r.Unit || a.Hash != r.FromHash {
				t.Fatalf("%s: SetFile %s %s", where, a.Target, a.Hash)
			}
		default:
			t.Fatalf("%s: unknown action %v", where, a)
		}
	}
	if len(sets) != len(moved) {
		t.Fatalf("%s: %d targets moved, %d SetHash", where, len(moved), len(sets))
	}
	if enter := r.Phase != PhaseReverting && next.Phase == PhaseReverting; enter != (setFiles == 1) || setFiles > 1 {
		t.Fatalf("%s: %d SetFile going %s -> %s", where, setFiles, r.Phase, next.Phase)
	}
}

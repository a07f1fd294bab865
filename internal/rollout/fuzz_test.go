package rollout

import (
	"reflect"
	"testing"
	"time"
)

// byteReader hands out fuzz bytes, zeros once they run out.
type byteReader struct{ b []byte }

func (r *byteReader) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) pick(n int) int { return int(r.next()) % n }

// dur is a duration of -8s..119s, 0 more often.
func (r *byteReader) dur() time.Duration {
	return time.Duration(int(r.next())%128-8) * time.Second
}

// FuzzStep builds arbitrary records (any phase, any statuses, odd specs,
// stored times in any order) and observations, and checks that nothing
// panics and that Step neither modifies its input nor changes a terminal
// record.
func FuzzStep(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 2, 10, 60, 1, 3, 1, 0, 0, 1, 1, 1, 2, 2, 2})
	f.Add([]byte{2, 1, 0, 1, 0, 5, 4, 10, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{7, 255, 200, 3, 1, 1, 8, 6, 6, 6, 6, 6, 6, 0, 0, 0, 0, 0, 0, 0})
	phases := []Phase{PhaseRunning, PhasePaused, PhaseReverting, PhaseDone, PhaseFailed, PhaseReverted, PhaseAborted, "", "bogus"}
	statuses := []TargetStatus{TargetPending, TargetUpdating, TargetUpdated, TargetFailed, TargetReverting, TargetReverted, "", "weird"}
	hashes := []string{fromHash, toHash, "", "x"}
	states := [][2]string{{"active", "running"}, {"failed", "exit-code"}, {"failed", ""}, {"activating", "start-pre"}, {"", ""}, {"inactive", "dead"}}

	f.Fuzz(func(t *testing.T, data []byte) {
		in := &byteReader{b: data}
		r := Rollout{
			Spec: Spec{
				Unit:            "web@.service",
				Global:          in.pick(2) == 0,
				FromHash:        hashes[in.pick(len(hashes))],
				ToHash:          hashes[in.pick(len(hashes))],
				MaxParallel:     int(int8(in.next())),
				MinHealthyTime:  in.dur(),
				HealthyDeadline: in.dur(),
				AutoRevert:      in.pick(2) == 0,
			},
			Phase:   phases[in.pick(len(phases))],
			Batches: int(int8(in.next())),
			Created: t0,
			Updated: t0,
		}
		n := in.pick(9)
		names := []string{"a", "b", "c", "d", "a"} // duplicates too
		obs := map[string]Observation{}
		for i := range n {
			tg := Target{Name: names[i%len(names)], Status: statuses[in.pick(len(statuses))]}
			if in.pick(2) == 0 {
				tg.Started = t0.Add(in.dur())
			}
			if in.pick(2) == 0 {
				tg.HealthySince = t0.Add(in.dur())
			}
			r.Targets = append(r.Targets, tg)
			if in.pick(4) != 0 {
				st := states[in.pick(len(states))]
				obs[tg.Name] = Observation{
					Present: in.pick(4) != 0, Hash: hashes[in.pick(len(hashes))],
					ActiveState: st[0], SubState: st[1], ChecksPassing: in.pick(2) == 0,
				}
			}
		}
		now := t0.Add(in.dur())

		before := clone(r)
		next, acts, evs := Step(r, obs, now)
		if !reflect.DeepEqual(before, r) {
			t.Fatal("Step modified its input")
		}
		if r.Phase.Terminal() && (!reflect.DeepEqual(next, r) || acts != nil || evs != nil) {
			t.Fatal("Step changed a terminal record")
		}
		_, _, _ = Step(next, obs, now.Add(time.Minute))
		_ = Progress(r)
		_ = Progress(next)
		_, _, _, _, _ = next.Counts()
		for _, tg := range r.Targets {
			_, _ = Pin(next, tg.Name)
		}
		_, _ = Pause(r, now)
		_, _ = Resume(r, now)
		_, _ = Abort(r, "x", now)
	})
}

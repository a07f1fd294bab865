package rollout

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeCluster plays the units of a rollout: a unit told to run a hash by a
// SetHash action shows up activating, then active 5s later; the hooks
// break it in ways a test picks.
type fakeCluster struct {
	hash  map[string]string
	moved map[string]time.Time
	// crash says a unit running hash crashes; flap says its checks fail
	// at now.
	crash func(name, hash string) bool
	flap  func(name string, now time.Time) bool
}

func newFakeCluster(names []string) *fakeCluster {
	c := &fakeCluster{hash: map[string]string{}, moved: map[string]time.Time{}}
	for _, n := range names {
		c.hash[n] = fromHash
	}
	return c
}

func (c *fakeCluster) apply(acts []Action, now time.Time) {
	for _, a := range acts {
		if a.Kind == SetHash {
			c.hash[a.Target], c.moved[a.Target] = a.Hash, now
		}
	}
}

func (c *fakeCluster) observe(now time.Time) map[string]Observation {
	obs := map[string]Observation{}
	for n, h := range c.hash {
		switch {
		case c.crash != nil && c.crash(n, h):
			obs[n] = crashed(h, "exit status 2")
		case now.Sub(c.moved[n]) < 5*time.Second:
			obs[n] = starting(h)
		case c.flap != nil && c.flap(n, now):
			obs[n] = checksFailing(h, "GET /healthz: 503")
		default:
			obs[n] = up(h)
		}
	}
	return obs
}

// statusLetters is one letter a target: . pending, ~ updating, + updated,
// x failed, < reverting, - reverted.
func statusLetters(r Rollout) string {
	letter := map[TargetStatus]byte{
		TargetPending: '.', TargetUpdating: '~', TargetUpdated: '+',
		TargetFailed: 'x', TargetReverting: '<', TargetReverted: '-',
	}
	var b strings.Builder
	for _, t := range r.Targets {
		b.WriteByte(letter[t.Status])
	}
	return b.String()
}

// transcript drives r against c every 5s with a fake clock until it is
// over, applying ops at their offsets, and returns what happened.
func transcript(t *testing.T, r Rollout, c *fakeCluster, ops map[time.Duration]func(Rollout, time.Time) (Rollout, error)) string {
	t.Helper()
	var b strings.Builder
	for d := time.Duration(0); d <= 5*time.Minute && !r.Phase.Terminal(); d += 5 * time.Second {
		now := at(d)
		if op := ops[d]; op != nil {
			var err error
			if r, err = op(r, now); err != nil {
				t.Fatalf("+%s: %v", d, err)
			}
			fmt.Fprintf(&b, "%5s -> %s\n", clock(d), r.Phase)
		}
		next, acts, evs := Step(r, c.observe(now), now)
		c.apply(acts, now)
		if reflect.DeepEqual(next, r) && len(acts) == 0 && len(evs) == 0 {
			r = next
			continue // nothing happened: keep the transcript short
		}
		r = next
		fmt.Fprintf(&b, "%5s %-9s [%s] %s\n", clock(d), r.Phase, statusLetters(r), Progress(r))
		for _, a := range acts {
			fmt.Fprintf(&b, "      %s %s %s\n", a.Kind, a.Target, shortHash(a.Hash))
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "      %s: %s\n", e.Type, e.Message)
		}
	}
	return b.String()
}

func clock(d time.Duration) string { return fmt.Sprintf("+%ds", int(d.Seconds())) }

func TestTranscript(t *testing.T) {
	spec := baseSpec()
	spec.MaxParallel = 2
	names := units(5)

	t.Run("done", func(t *testing.T) {
		r, err := New(spec, names, t0)
		if err != nil {
			t.Fatal(err)
		}
		c := newFakeCluster(names)
		// web@5's checks fail once while it waits out min-healthy-time.
		c.flap = func(n string, now time.Time) bool { return n == "web@5.service" && now.Equal(at(55*time.Second)) }
		// Paused while the second batch is in flight: it still becomes
		// healthy, the third waits for the resume.
		got := transcript(t, r, c, map[time.Duration]func(Rollout, time.Time) (Rollout, error){
			20 * time.Second: pauseOp,
			40 * time.Second: resumeOp,
		})
		const want = `
  +0s running   [~~...] 0/5 updated, 2 in progress, waiting for health
      set-hash web@1.service 3333333
      set-hash web@2.service 3333333
      rollout-started: rollout of web@.service to revision 3 (3333333) started: 5 targets, 2 at a time
  +5s running   [~~...] 0/5 updated, 2 in progress, healthy, waiting out min-healthy-time 10s
 +15s running   [++~~.] 2/5 updated, 2 in progress, waiting for health
      set-hash web@3.service 3333333
      set-hash web@4.service 3333333
      batch-healthy: batch 1/3 healthy: web@1, web@2
 +20s -> paused
 +20s paused    [++~~.] paused: 2/5 updated, 2 in progress, healthy, waiting out min-healthy-time 10s
 +30s paused    [++++.] paused: 4/5 updated
      batch-healthy: batch 2/3 healthy: web@3, web@4
 +40s -> running
 +40s running   [++++~] 4/5 updated, 1 in progress, waiting for health
      set-hash web@5.service 3333333
 +45s running   [++++~] 4/5 updated, 1 in progress, healthy, waiting out min-healthy-time 10s
 +55s running   [++++~] 4/5 updated, 1 in progress, waiting for health
 +60s running   [++++~] 4/5 updated, 1 in progress, healthy, waiting out min-healthy-time 10s
 +70s done      [+++++] done: 5/5 updated
      batch-healthy: batch 3/3 healthy: web@5
      rollout-done: rollout of web@.service to revision 3 (3333333) done: 5/5 updated
`
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("auto-revert", func(t *testing.T) {
		s := spec
		s.AutoRevert = true
		r, err := New(s, names, t0)
		if err != nil {
			t.Fatal(err)
		}
		c := newFakeCluster(names)
		// web@4 crashes on the new revision.
		c.crash = func(n, h string) bool { return n == "web@4.service" && h == toHash }
		got := transcript(t, r, c, nil)
		const want = `
  +0s running   [~~...] 0/5 updated, 2 in progress, waiting for health
      set-hash web@1.service 3333333
      set-hash web@2.service 3333333
      rollout-started: rollout of web@.service to revision 3 (3333333) started: 5 targets, 2 at a time
  +5s running   [~~...] 0/5 updated, 2 in progress, healthy, waiting out min-healthy-time 10s
 +15s running   [++~~.] 2/5 updated, 2 in progress, waiting for health
      set-hash web@3.service 3333333
      set-hash web@4.service 3333333
      batch-healthy: batch 1/3 healthy: web@1, web@2
 +20s reverting [++<<.] reverting: 0/4 reverted, 2 in progress, waiting for health; failed: web@4.service: failed (exit-code): exit status 2
      set-file web@.service 1111111
      set-hash web@3.service 1111111
      set-hash web@4.service 1111111
      rollout-failed: rollout of web@.service to revision 3 failed: web@4.service: failed (exit-code): exit status 2; reverting to revision 2
 +25s reverting [++<<.] reverting: 0/4 reverted, 2 in progress, healthy, waiting out min-healthy-time 10s; failed: web@4.service: failed (exit-code): exit status 2
 +35s reverting [<<--.] reverting: 2/4 reverted, 2 in progress, waiting for health; failed: web@4.service: failed (exit-code): exit status 2
      set-hash web@1.service 1111111
      set-hash web@2.service 1111111
 +40s reverting [<<--.] reverting: 2/4 reverted, 2 in progress, healthy, waiting out min-healthy-time 10s; failed: web@4.service: failed (exit-code): exit status 2
 +50s reverted  [----.] reverted: 4/4 back at revision 2 after web@4.service: failed (exit-code): exit status 2
      rollout-reverted: rollout of web@.service to revision 3 reverted: 4 targets back at revision 2 (1111111)
`
		if strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
		}
	})
}

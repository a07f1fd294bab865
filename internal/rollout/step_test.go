package rollout

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one driver tick of a table row: at t0+At, optionally flip the
// phase (Op), then call Step with Obs (unless NoStep).
type step struct {
	At     time.Duration
	Op     func(Rollout, time.Time) (Rollout, error)
	Obs    map[string]Observation
	NoStep bool
}

func pauseOp(r Rollout, now time.Time) (Rollout, error)  { return Pause(r, now) }
func resumeOp(r Rollout, now time.Time) (Rollout, error) { return Resume(r, now) }
func abortOp(reason string) func(Rollout, time.Time) (Rollout, error) {
	return func(r Rollout, now time.Time) (Rollout, error) { return Abort(r, reason, now) }
}

func TestStepRules(t *testing.T) {
	to, from := up(toHash), up(fromHash)
	w := units(3)
	w1, w2, w3 := w[0], w[1], w[2]

	tests := []struct {
		name    string
		rule    int
		spec    func(*Spec)
		targets []string
		start   func() Rollout // instead of New(spec, targets, t0)
		steps   []step

		wantPhase    Phase
		wantStatus   string   // after the last step
		wantActions  []string // of the last step; nil means none
		wantEvents   []string // event types over all steps, in order
		wantMessages []string // substrings of event messages over all steps, in order
		wantReason   string   // substring of Reason
		wantBatches  int
		wantProgress string
		check        func(t *testing.T, r Rollout)
	}{
		{
			name: "terminal record is returned unchanged", rule: 1,
			start: func() Rollout {
				r, _ := New(baseSpec(), units(2), t0)
				r.Phase = PhaseDone
				r.Targets[0].Status, r.Targets[1].Status = TargetUpdated, TargetUpdated
				return r
			},
			steps:     []step{{At: time.Hour, Obs: allObs(crashed(toHash, "boom"), w1, w2)}},
			wantPhase: PhaseDone, wantStatus: "web@1=updated web@2=updated",
			wantProgress: "done: 2/2 updated",
			check: func(t *testing.T, r Rollout) {
				if !r.Updated.Equal(t0) {
					t.Errorf("Updated = %v, want unchanged %v", r.Updated, t0)
				}
			},
		},
		{
			name: "first step starts the first batch", rule: 4,
			targets:     units(4),
			steps:       []step{{At: 0}},
			wantPhase:   PhaseRunning,
			wantStatus:  "web@1=updating web@2=pending web@3=pending web@4=pending",
			wantActions: []string{"set-hash web@1.service 3333333"},
			wantEvents:  []string{EventStarted},
			wantMessages: []string{
				"rollout of web@.service to revision 3 (3333333) started: 4 targets, 1 at a time",
			},
			wantProgress: "0/4 updated, 1 in progress, waiting for health",
		},
		{
			name: "healthy for min-healthy-time makes a target updated", rule: 2,
			targets: units(2),
			steps: []step{
				{At: 0},
				{At: 1 * time.Second, Obs: obsOf(w1, to)},
				{At: 10 * time.Second, Obs: obsOf(w1, to)}, // 9s healthy: not yet
			},
			wantPhase: PhaseRunning, wantStatus: "web@1=updating web@2=pending",
			wantEvents:   []string{EventStarted},
			wantProgress: "0/2 updated, 1 in progress, healthy, waiting out min-healthy-time 10s",
			check: func(t *testing.T, r Rollout) {
				if got := r.Targets[0].HealthySince; !got.Equal(at(time.Second)) {
					t.Errorf("HealthySince = %v, want %v", got, at(time.Second))
				}
				next, acts, evs := Step(r, obsOf(w1, to), at(11*time.Second))
				if next.Targets[0].Status != TargetUpdated || next.Targets[1].Status != TargetUpdating {
					t.Errorf("at 11s: %s", statuses(next))
				}
				if got := fmtActions(acts); !slices.Equal(got, []string{"set-hash web@2.service 3333333"}) {
					t.Errorf("at 11s actions = %q", got)
				}
				if got := fmtEvents(evs); !slices.Equal(got, []string{"batch-healthy: batch 1/2 healthy: web@1"}) {
					t.Errorf("at 11s events = %q", got)
				}
			},
		},
		{
			name: "min-healthy-time gate resets when health flaps", rule: 2,
			targets: units(1),
			steps: []step{
				{At: 0},
				{At: 1 * time.Second, Obs: obsOf(w1, to)},
				{At: 8 * time.Second, Obs: obsOf(w1, checksFailing(toHash, "GET /health: 503"))},
				{At: 9 * time.Second, Obs: obsOf(w1, to)},
				{At: 15 * time.Second, Obs: obsOf(w1, to)}, // 14s since first healthy, 6s since last
			},
			wantPhase: PhaseRunning, wantStatus: "web@1=updating",
			wantEvents: []string{EventStarted},
			check: func(t *testing.T, r Rollout) {
				if got := r.Targets[0].HealthySince; !got.Equal(at(9 * time.Second)) {
					t.Errorf("HealthySince = %v, want reset to 9s", got)
				}
				next, _, evs := Step(r, obsOf(w1, to), at(19*time.Second))
				if next.Phase != PhaseDone || len(evs) != 2 || evs[0].Type != EventBatch || evs[1].Type != EventDone {
					t.Errorf("at 19s: %s %s %q", next.Phase, statuses(next), fmtEvents(evs))
				}
			},
		},
		{
			name: "missing observation, wrong hash and failing checks are not healthy", rule: 2,
			targets: units(3),
			spec:    func(s *Spec) { s.MaxParallel = 3; s.MinHealthyTime = 0 },
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf(w2, from, w3, checksFailing(toHash, ""))},
			},
			wantPhase: PhaseRunning, wantStatus: "web@1=updating web@2=updating web@3=updating",
			wantEvents: []string{EventStarted},
			check: func(t *testing.T, r Rollout) {
				for _, tg := range r.Targets {
					if !tg.HealthySince.IsZero() {
						t.Errorf("%s HealthySince = %v, want zero", tg.Name, tg.HealthySince)
					}
				}
			},
		},
		{
			name: "zero min-healthy-time: updated on first healthy observation", rule: 2,
			targets:   units(1),
			spec:      func(s *Spec) { s.MinHealthyTime = 0 },
			steps:     []step{{At: 0}, {At: time.Second, Obs: obsOf(w1, to)}},
			wantPhase: PhaseDone, wantStatus: "web@1=updated", wantBatches: 1,
			wantEvents:   []string{EventStarted, EventBatch, EventDone},
			wantMessages: []string{"started", "batch 1/1 healthy: web@1", "rollout of web@.service to revision 3 (3333333) done: 1/1 updated"},
			wantProgress: "done: 1/1 updated",
		},
		{
			name: "deadline failure", rule: 3,
			targets: units(2),
			steps: []step{
				{At: 0},
				{At: 30 * time.Second, Obs: obsOf(w1, starting(toHash))},
				{At: 59 * time.Second, Obs: obsOf(w1, starting(toHash))},
				{At: 60 * time.Second, Obs: obsOf(w1, Observation{Present: true, Hash: toHash, ActiveState: "activating", SubState: "start-pre", Detail: "ExecStartPre still running"})},
			},
			wantPhase: PhaseFailed, wantStatus: "web@1=failed web@2=pending",
			wantEvents:   []string{EventStarted, EventFailed},
			wantMessages: []string{"started", "rollout of web@.service to revision 3 failed: web@1.service: activating start-pre, not healthy after 1m0s: ExecStartPre still running"},
			wantReason:   "web@1.service: activating start-pre, not healthy after 1m0s",
			wantProgress: "failed: web@1.service: activating start-pre, not healthy after 1m0s: ExecStartPre still running",
			check: func(t *testing.T, r Rollout) {
				if r.Targets[0].Message != r.Reason {
					t.Errorf("target Message %q != Reason %q", r.Targets[0].Message, r.Reason)
				}
			},
		},
		{
			name: "deadline failure of a unit that never showed up", rule: 3,
			targets:   units(1),
			steps:     []step{{At: 0}, {At: 90 * time.Second}},
			wantPhase: PhaseFailed, wantStatus: "web@1=failed",
			wantEvents: []string{EventStarted, EventFailed},
			wantReason: "web@1.service: not running, not healthy after 1m30s",
		},
		{
			name: "deadline failure while healthy but not for long enough", rule: 3,
			targets:   units(1),
			steps:     []step{{At: 0}, {At: 55 * time.Second, Obs: obsOf(w1, to)}, {At: 60 * time.Second, Obs: obsOf(w1, to)}},
			wantPhase: PhaseFailed, wantStatus: "web@1=failed",
			wantEvents: []string{EventStarted, EventFailed},
			wantReason: "web@1.service: healthy for only 5s of 10s, not healthy after 1m0s",
		},
		{
			name: "early failure on ActiveState failed", rule: 3,
			targets: units(2),
			steps: []step{
				{At: 0},
				{At: 2 * time.Second, Obs: obsOf(w1, crashed(toHash, "exit status 1"))},
			},
			wantPhase: PhaseFailed, wantStatus: "web@1=failed web@2=pending",
			wantEvents:   []string{EventStarted, EventFailed},
			wantReason:   "web@1.service: failed (exit-code): exit status 1",
			wantProgress: "failed: web@1.service: failed (exit-code): exit status 1",
		},
		{
			name: "a failed unit still on the old hash is not an early failure", rule: 3,
			targets:   units(1),
			steps:     []step{{At: 0}, {At: 2 * time.Second, Obs: obsOf(w1, crashed(fromHash, "old"))}},
			wantPhase: PhaseRunning, wantStatus: "web@1=updating",
			wantEvents: []string{EventStarted},
		},
		{
			name: "global failure message names the unit and the machine", rule: 3,
			spec:    func(s *Spec) { s.Unit, s.Global = "agent.service", true },
			targets: []string{"0123456789abcdef0123456789abcdef"},
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf("0123456789abcdef0123456789abcdef", crashed(toHash, ""))},
			},
			wantPhase: PhaseFailed, wantStatus: "0123456789abcdef0123456789abcdef=failed",
			wantEvents:   []string{EventStarted, EventFailed},
			wantMessages: []string{"rollout of agent.service to revision 3 (3333333) started: 1 machine, 1 at a time", "failed: agent.service on 01234567: failed (exit-code)"},
			wantReason:   "agent.service on 01234567: failed (exit-code)",
		},
		{
			name: "batches of max-parallel in Targets order, batch-healthy counts", rule: 4,
			targets: units(5),
			spec:    func(s *Spec) { s.MaxParallel = 2; s.MinHealthyTime = 0 },
			steps: []step{
				{At: 0},
				{At: 1 * time.Second, Obs: allObs(to, w1)}, // half a batch: not healthy yet
				{At: 2 * time.Second, Obs: allObs(to, w1, w2)},
				{At: 3 * time.Second, Obs: allObs(to, w1, w2, "web@3.service", "web@4.service")},
			},
			wantPhase: PhaseRunning, wantStatus: "web@1=updated web@2=updated web@3=updated web@4=updated web@5=updating",
			wantActions:  []string{"set-hash web@5.service 3333333"},
			wantEvents:   []string{EventStarted, EventBatch, EventBatch},
			wantMessages: []string{"5 targets, 2 at a time", "batch 1/3 healthy: web@1, web@2", "batch 2/3 healthy: web@3, web@4"},
			wantBatches:  2,
			wantProgress: "4/5 updated, 1 in progress, waiting for health",
		},
		{
			name: "empty target list is done at once", rule: 4,
			targets:   nil,
			steps:     []step{{At: 0}},
			wantPhase: PhaseDone, wantStatus: "",
			wantEvents:   []string{EventStarted, EventDone},
			wantMessages: []string{"0 targets", "done: 0/0 updated"},
		},
		{
			name: "pause stops new batches but still observes in-flight ones", rule: 5,
			targets: units(3),
			spec:    func(s *Spec) { s.MinHealthyTime = 0 },
			steps: []step{
				{At: 0},
				{At: time.Second, Op: pauseOp},
				{At: 2 * time.Second, Obs: allObs(to, w1)},
				{At: 3 * time.Second, Obs: allObs(to, w1)},
			},
			wantPhase: PhasePaused, wantStatus: "web@1=updated web@2=pending web@3=pending",
			wantEvents:   []string{EventStarted, EventBatch},
			wantBatches:  1,
			wantProgress: "paused: 1/3 updated",
			check: func(t *testing.T, r Rollout) {
				r, err := Resume(r, at(4*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				next, acts, _ := Step(r, allObs(to, w1), at(5*time.Second))
				if got := fmtActions(acts); next.Phase != PhaseRunning || !slices.Equal(got, []string{"set-hash web@2.service 3333333"}) {
					t.Errorf("after resume: %s %q", next.Phase, got)
				}
			},
		},
		{
			name: "a paused rollout still fails on its batch in flight", rule: 5,
			targets: units(2),
			steps: []step{
				{At: 0},
				{At: time.Second, Op: pauseOp, Obs: obsOf(w1, crashed(toHash, ""))},
			},
			wantPhase: PhaseFailed, wantStatus: "web@1=failed web@2=pending",
			wantEvents: []string{EventStarted, EventFailed},
		},
		{
			name: "a paused rollout whose last batch becomes healthy is done", rule: 5,
			targets:   units(1),
			spec:      func(s *Spec) { s.MinHealthyTime = 0 },
			steps:     []step{{At: 0}, {At: time.Second, Op: pauseOp, Obs: obsOf(w1, to)}},
			wantPhase: PhaseDone, wantStatus: "web@1=updated", wantBatches: 1,
			wantEvents: []string{EventStarted, EventBatch, EventDone},
		},
		{
			name: "abort ends the rollout where it is", rule: 5,
			targets: units(3),
			steps: []step{
				{At: 0},
				{At: time.Second, Op: abortOp("aborted by alice"), Obs: obsOf(w1, to)},
				{At: time.Hour, Obs: obsOf(w1, to)},
			},
			wantPhase: PhaseAborted, wantStatus: "web@1=updating web@2=pending web@3=pending",
			wantEvents:   []string{EventStarted},
			wantReason:   "aborted by alice",
			wantProgress: "aborted: aborted by alice (0/3 updated)",
			check: func(t *testing.T, r Rollout) {
				if !r.Updated.Equal(at(time.Second)) {
					t.Errorf("Updated = %v, want the abort time", r.Updated)
				}
			},
		},
		{
			name: "auto-revert goes through reverting to reverted", rule: 6,
			targets: units(3),
			spec:    func(s *Spec) { s.AutoRevert = true; s.MinHealthyTime = 0 },
			steps: []step{
				{At: 0},
				{At: 1 * time.Second, Obs: allObs(to, w1)},                            // web@1 updated, web@2 starts
				{At: 2 * time.Second, Obs: obsOf(w1, to, w2, crashed(toHash, "bad"))}, // web@2 fails: revert it first
				{At: 3 * time.Second, Obs: obsOf(w1, to, w2, from)},                   // web@2 back, web@1 goes back
			},
			wantPhase: PhaseReverting, wantStatus: "web@1=reverting web@2=reverted web@3=pending",
			wantActions:  []string{"set-hash web@1.service 1111111"},
			wantEvents:   []string{EventStarted, EventBatch, EventFailed},
			wantMessages: []string{"", "batch 1/3 healthy: web@1", "rollout of web@.service to revision 3 failed: web@2.service: failed (exit-code): bad; reverting to revision 2"},
			wantReason:   "web@2.service: failed (exit-code): bad",
			wantBatches:  1,
			wantProgress: "reverting: 1/2 reverted, 1 in progress, waiting for health; failed: web@2.service: failed (exit-code): bad",
			check: func(t *testing.T, r Rollout) {
				next, acts, evs := Step(r, obsOf(w1, from, w2, from), at(4*time.Second))
				if next.Phase != PhaseReverted || statuses(next) != "web@1=reverted web@2=reverted web@3=pending" || len(acts) != 0 {
					t.Errorf("at 4s: %s %s %q", next.Phase, statuses(next), fmtActions(acts))
				}
				want := []string{"rollout-reverted: rollout of web@.service to revision 3 reverted: 2 targets back at revision 2 (1111111)"}
				if got := fmtEvents(evs); !slices.Equal(got, want) {
					t.Errorf("at 4s events = %q, want %q", got, want)
				}
				if got, want := Progress(next), "reverted: 2/2 back at revision 2 after web@2.service: failed (exit-code): bad"; got != want {
					t.Errorf("Progress = %q, want %q", got, want)
				}
				for _, s := range []Phase{next.Phase} {
					if !s.Terminal() {
						t.Errorf("%s not terminal", s)
					}
				}
			},
		},
		{
			name: "entering reverting rewrites the unit file and moves the batch in flight back", rule: 6,
			targets: units(3),
			spec:    func(s *Spec) { s.AutoRevert = true; s.MaxParallel = 2 },
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf(w2, crashed(toHash, ""))},
			},
			wantPhase: PhaseReverting, wantStatus: "web@1=reverting web@2=reverting web@3=pending",
			wantActions: []string{
				"set-file web@.service 1111111",
				"set-hash web@1.service 1111111",
				"set-hash web@2.service 1111111",
			},
			wantEvents: []string{EventStarted, EventFailed},
			check: func(t *testing.T, r Rollout) {
				for _, tg := range r.Targets[:2] {
					if !tg.Started.Equal(at(time.Second)) || !tg.HealthySince.IsZero() {
						t.Errorf("%s Started %v HealthySince %v", tg.Name, tg.Started, tg.HealthySince)
					}
				}
			},
		},
		{
			name: "revert failure fails the rollout", rule: 6,
			targets: units(2),
			spec:    func(s *Spec) { s.AutoRevert = true },
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf(w1, crashed(toHash, "bad"))},
				{At: 2 * time.Second, Obs: obsOf(w1, crashed(fromHash, "worse"))},
			},
			wantPhase: PhaseFailed, wantStatus: "web@1=revert-failed web@2=pending",
			wantEvents:   []string{EventStarted, EventFailed, EventFailed},
			wantMessages: []string{"", "", "revert of web@.service to revision 2 failed: web@1.service: failed (exit-code): worse"},
			wantReason:   "revert failed: web@1.service: failed (exit-code): worse",
			wantProgress: "failed: revert failed: web@1.service: failed (exit-code): worse",
		},
		{
			name: "revert deadline failure", rule: 6,
			targets: units(1),
			spec:    func(s *Spec) { s.AutoRevert = true },
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf(w1, crashed(toHash, ""))},
				{At: time.Second + time.Minute, Obs: obsOf(w1, crashed(toHash, ""))},
			},
			wantPhase: PhaseFailed, wantStatus: "web@1=revert-failed",
			wantEvents: []string{EventStarted, EventFailed, EventFailed},
			wantReason: "revert failed: web@1.service: still at 3333333, want 1111111, not healthy after 1m0s",
		},
		{
			name: "pending targets are left alone by a revert", rule: 6,
			targets: units(3),
			spec:    func(s *Spec) { s.AutoRevert = true; s.MinHealthyTime = 0 },
			steps: []step{
				{At: 0},
				{At: time.Second, Obs: obsOf(w1, crashed(toHash, ""))},
				{At: 2 * time.Second, Obs: obsOf(w1, from)},
			},
			wantPhase: PhaseReverted, wantStatus: "web@1=reverted web@2=pending web@3=pending",
			wantEvents: []string{EventStarted, EventFailed, EventReverted},
			check: func(t *testing.T, r Rollout) {
				for _, m := range []string{w2, w3} {
					if h, ok := Pin(r, m); !ok || h != fromHash {
						t.Errorf("Pin(%s) = %q, %v", m, h, ok)
					}
				}
			},
		},
		{
			name: "global pin follows the target status", rule: 7,
			spec:    func(s *Spec) { s.Unit, s.Global = "agent.service", true },
			targets: []string{"m1", "m2", "m3", "m4", "m5", "m6"},
			start: func() Rollout {
				s := baseSpec()
				s.Unit, s.Global = "agent.service", true
				r, _ := New(s, []string{"m1", "m2", "m3", "m4", "m5", "m6"}, t0)
				for i, st := range []TargetStatus{TargetPending, TargetUpdating, TargetUpdated, TargetFailed, TargetReverting, TargetReverted} {
					r.Targets[i].Status = st
				}
				r.Phase = PhaseReverting
				return r
			},
			wantPhase: PhaseReverting, wantStatus: "m1=pending m2=updating m3=updated m4=failed m5=reverting m6=reverted",
			check: func(t *testing.T, r Rollout) {
				want := map[string]string{"m1": fromHash, "m2": toHash, "m3": toHash, "m4": toHash, "m5": fromHash, "m6": fromHash}
				for m, h := range want {
					if got, ok := Pin(r, m); !ok || got != h {
						t.Errorf("Pin(%s) = %q, %v; want %q", m, got, ok, shortHash(h))
					}
				}
				if got, ok := Pin(r, "m7"); ok || got != "" {
					t.Errorf("Pin(m7) = %q, %v; want not a target", got, ok)
				}
				// A machine whose revert failed runs the previous file.
				r.Targets[4].Status = TargetRevertFailed
				if got, ok := Pin(r, "m5"); !ok || got != fromHash {
					t.Errorf("Pin(revert-failed m5) = %q, %v; want %q", got, ok, shortHash(fromHash))
				}
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Rollout
			if tc.start != nil {
				r = tc.start()
			} else {
				spec := baseSpec()
				if tc.spec != nil {
					tc.spec(&spec)
				}
				var err error
				if r, err = New(spec, tc.targets, t0); err != nil {
					t.Fatalf("New: %v", err)
				}
			}
			var events []Event
			var actions []Action
			for i, s := range tc.steps {
				now := at(s.At)
				if s.Op != nil {
					var err error
					if r, err = s.Op(r, now); err != nil {
						t.Fatalf("step %d: op: %v", i, err)
					}
				}
				if s.NoStep {
					continue
				}
				before := clone(r)
				next, acts, evs := Step(r, s.Obs, now)
				if !reflect.DeepEqual(before, r) {
					t.Fatalf("step %d: Step modified its input", i)
				}
				if r.Phase.Terminal() && (!reflect.DeepEqual(next, r) || acts != nil || evs != nil) {
					t.Fatalf("step %d: terminal record changed: %+v %v %v", i, next, acts, evs)
				}
				r, actions = next, acts
				events = append(events, evs...)
			}
			if r.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s (reason %q)", r.Phase, tc.wantPhase, r.Reason)
			}
			if got := statuses(r); got != tc.wantStatus {
				t.Errorf("statuses = %q\n                 want %q", got, tc.wantStatus)
			}
			if got := fmtActions(actions); !slices.Equal(got, tc.wantActions) {
				t.Errorf("last actions = %q, want %q", got, tc.wantActions)
			}
			var types []string
			for _, e := range events {
				types = append(types, e.Type)
			}
			if !slices.Equal(types, tc.wantEvents) {
				t.Errorf("events = %q, want types %q", fmtEvents(events), tc.wantEvents)
			}
			for i, m := range tc.wantMessages {
				if i >= len(events) || !strings.Contains(events[i].Message, m) {
					t.Errorf("event %d = %q, want it to contain %q", i, fmtEvents(events), m)
				}
			}
			if !strings.Contains(r.Reason, tc.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", r.Reason, tc.wantReason)
			}
			if r.Batches != tc.wantBatches {
				t.Errorf("batches = %d, want %d", r.Batches, tc.wantBatches)
			}
			if tc.wantProgress != "" {
				if got := Progress(r); got != tc.wantProgress {
					t.Errorf("Progress = %q\n      want %q", got, tc.wantProgress)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestStepUpdatedTime(t *testing.T) {
	r, _ := New(baseSpec(), units(1), t0)
	r, _, _ = Step(r, nil, at(time.Second))
	if !r.Updated.Equal(at(time.Second)) {
		t.Fatalf("Updated = %v after starting a batch", r.Updated)
	}
	// Nothing to see: nothing changes, Updated stays.
	next, acts, evs := Step(r, nil, at(2*time.Second))
	if !reflect.DeepEqual(next, r) || acts != nil || evs != nil {
		t.Fatalf("idle step changed something: %+v %v %v", next, acts, evs)
	}
	// Healthy for the first time: HealthySince changes, so does Updated.
	next, _, _ = Step(r, obsOf("web@1.service", up(toHash)), at(3*time.Second))
	if !next.Updated.Equal(at(3 * time.Second)) {
		t.Fatalf("Updated = %v, want 3s", next.Updated)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Spec)
		targets []string
		want    string // substring of the error; "" for none
	}{
		{"ok", nil, units(3), ""},
		{"no targets is valid", nil, nil, ""},
		{"empty unit", func(s *Spec) { s.Unit = "" }, nil, "unit name is required"},
		{"max-parallel 0", func(s *Spec) { s.MaxParallel = 0 }, nil, "max-parallel must be at least 1"},
		{"negative min-healthy-time", func(s *Spec) { s.MinHealthyTime = -time.Second }, nil, "min-healthy-time must not be negative"},
		{"zero deadline", func(s *Spec) { s.HealthyDeadline = 0 }, nil, "healthy-deadline must be positive"},
		{"deadline shorter than min-healthy-time", func(s *Spec) { s.HealthyDeadline = 5 * time.Second }, nil, "healthy-deadline (5s) must be at least min-healthy-time (10s)"},
		{"empty to-hash", func(s *Spec) { s.ToHash = "" }, nil, "target hash is empty"},
		{"same hash", func(s *Spec) { s.ToHash = fromHash }, nil, "nothing to roll: web@.service is already at revision 2 (1111111)"},
		{"duplicate target", nil, []string{"a", "b", "a"}, `duplicate target "a"`},
		{"empty target", nil, []string{"a", ""}, "target 2 of web@.service has an empty name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			if tc.mod != nil {
				tc.mod(&s)
			}
			err := Validate(s, tc.targets)
			_, nerr := New(s, tc.targets, t0)
			if tc.want == "" {
				if err != nil || nerr != nil {
					t.Fatalf("Validate = %v, New = %v; want nil", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if nerr == nil || nerr.Error() != err.Error() {
				t.Fatalf("New = %v, want %v", nerr, err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	r, err := New(baseSpec(), units(2), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := Rollout{
		Spec:    baseSpec(),
		Phase:   PhaseRunning,
		Targets: []Target{{Name: "web@1.service", Status: TargetPending}, {Name: "web@2.service", Status: TargetPending}},
		Created: t0, Updated: t0,
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("New = %+v\nwant %+v", r, want)
	}
	if got := Progress(r); got != "0/2 updated, starting next batch" {
		t.Fatalf("Progress = %q", got)
	}
	if r, _ := New(baseSpec(), nil, t0); r.Targets == nil {
		t.Fatal("Targets is nil for no targets; want empty")
	}
}

func TestPauseResumeAbort(t *testing.T) {
	r, _ := New(baseSpec(), units(1), t0)
	p, err := Pause(r, at(time.Second))
	if err != nil || p.Phase != PhasePaused || !p.Updated.Equal(at(time.Second)) {
		t.Fatalf("Pause = %+v, %v", p, err)
	}
	if _, err := Pause(p, at(time.Second)); err == nil || !strings.Contains(err.Error(), "already paused") {
		t.Fatalf("Pause paused = %v", err)
	}
	if _, err := Resume(r, at(time.Second)); err == nil || !strings.Contains(err.Error(), "not paused") {
		t.Fatalf("Resume running = %v", err)
	}
	q, err := Resume(p, at(2*time.Second))
	if err != nil || q.Phase != PhaseRunning {
		t.Fatalf("Resume = %+v, %v", q, err)
	}
	a, err := Abort(p, "stop", at(3*time.Second))
	if err != nil || a.Phase != PhaseAborted || a.Reason != "stop" {
		t.Fatalf("Abort = %+v, %v", a, err)
	}

	rev := r
	rev.Phase = PhaseReverting
	if _, err := Pause(rev, t0); err == nil || !strings.Contains(err.Error(), "reverting") {
		t.Fatalf("Pause reverting = %v", err)
	}
	if _, err := Resume(rev, t0); err == nil {
		t.Fatal("Resume reverting: no error")
	}
	if a, err := Abort(rev, "x", t0); err != nil || a.Phase != PhaseAborted {
		t.Fatalf("Abort reverting = %+v, %v", a, err)
	}

	for _, ph := range []Phase{PhaseDone, PhaseFailed, PhaseReverted, PhaseAborted} {
		d := r
		d.Phase = ph
		for name, f := range map[string]func(Rollout) (Rollout, error){
			"pause":  func(r Rollout) (Rollout, error) { return Pause(r, at(time.Hour)) },
			"resume": func(r Rollout) (Rollout, error) { return Resume(r, at(time.Hour)) },
			"abort":  func(r Rollout) (Rollout, error) { return Abort(r, "x", at(time.Hour)) },
		} {
			got, err := f(d)
			want := "rollout of web@.service is " + string(ph) + "; nothing to " + name
			if err == nil || err.Error() != want {
				t.Errorf("%s %s: err = %v, want %q", name, ph, err, want)
			}
			if !reflect.DeepEqual(got, d) {
				t.Errorf("%s %s changed the record", name, ph)
			}
		}
	}
}

func TestCounts(t *testing.T) {
	r, _ := New(baseSpec(), units(7), t0)
	for i, st := range []TargetStatus{TargetPending, TargetUpdating, TargetUpdated, TargetFailed, TargetReverting, TargetReverted, TargetUpdated} {
		r.Targets[i].Status = st
	}
	p, f, u, fa, rv := r.Counts()
	if p != 1 || f != 2 || u != 2 || fa != 1 || rv != 1 {
		t.Fatalf("Counts = %d %d %d %d %d", p, f, u, fa, rv)
	}
}

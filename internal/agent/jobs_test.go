package agent

import (
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/runner"
	"github.com/fleetd/fleet/internal/store"
)

func TestJobOutcome(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	start := t0.Add(time.Second)
	after := t0.Add(2 * time.Second)
	for _, tc := range []struct {
		name   string
		st     runner.State
		result string
	}{
		{"exited 0, inactive/dead: succeeded", runner.State{ActiveState: "inactive", SubState: "dead", Result: "success", Since: after}, store.JobSucceeded},
		{"RemainAfterExit: active/exited: succeeded", runner.State{ActiveState: "active", SubState: "exited", Result: "success", Since: after}, store.JobSucceeded},
		{"failed after the runner's retries: failed", runner.State{ActiveState: "failed", SubState: "failed", Result: "exit-code", Since: after}, store.JobFailed},
		{"start limit hit: failed", runner.State{ActiveState: "failed", SubState: "failed", Result: "start-limit-hit", Since: after}, store.JobFailed},
		{"between retries (auto-restart): not over", runner.State{ActiveState: "activating", SubState: "auto-restart", Result: "exit-code", Since: after}, ""},
		{"running: not over", runner.State{ActiveState: "activating", SubState: "start", Result: "success", Since: after}, ""},
		{"never ran (no result): not over", runner.State{ActiveState: "inactive", SubState: "dead", Since: after}, ""},
		{"an end from before the start: not ours", runner.State{ActiveState: "failed", SubState: "failed", Result: "exit-code", Since: t0}, ""},
		{"an earlier success: not ours", runner.State{ActiveState: "inactive", SubState: "dead", Result: "success", Since: t0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, done := jobOutcome(tc.st, start)
			if got != tc.result || done != (tc.result != "") {
				t.Fatalf("jobOutcome = %q, %v; want %q", got, done, tc.result)
			}
		})
	}
}

// Only launched Job units whose end is not recorded yet get a record,
// with the runner's result and the agent's hash.
func TestJobRecords(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	done := runner.State{ActiveState: "inactive", SubState: "dead", Result: "success", Since: now}
	failed := runner.State{ActiveState: "failed", SubState: "failed", Result: "exit-code", Since: now}
	lu := map[string]loadedUnit{
		"a": rec("h1", launched),                        // not a job
		"j": jobLoaded("h1", launched, ""),              // ended: recorded
		"k": jobLoaded("h2", launched, store.JobFailed), // already recorded
		"l": jobLoaded("h3", loaded, ""),                // not launched
		"m": jobLoaded("h4", launched, ""),              // failed: recorded
		"n": jobLoaded("h5", launched, ""),              // no state
	}
	states := map[string]runner.State{"a": done, "j": done, "k": failed, "l": done, "m": failed}
	got := jobRecords("m1", lu, states, now)
	if len(got) != 2 || got[0].Unit != "j" || got[0].Result != store.JobSucceeded || got[0].Hash != "h1" || got[0].UnitResult != "success" ||
		got[1].Unit != "m" || got[1].Result != store.JobFailed || got[1].UnitResult != "exit-code" || got[1].Machine != "m1" || !got[1].Finished.Equal(now) {
		t.Fatalf("jobRecords = %+v", got)
	}
}

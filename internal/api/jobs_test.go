package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

func TestJobsAPI(t *testing.T) {
	e := newEnv(t, 0)
	// Job=true needs Type=oneshot: 400 naming the problem, nothing stored.
	bad := `{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"X-Fleet","name":"Job","value":"true"}]}`
	r := e.do("PUT", "/fleet/v1/units/j.service", "application/json", bad)
	if r.code != 400 || !strings.Contains(r.body, "Job=true requires [Service] Type=oneshot") {
		t.Fatalf("non-oneshot job: %d %s", r.code, r.body)
	}
	if _, err := e.store.Unit(e.ctx(), "j.service"); err == nil {
		t.Fatal("a refused job was stored")
	}
	good := `{"desiredState":"launched","options":[{"section":"Service","name":"Type","value":"oneshot"},{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"X-Fleet","name":"Job","value":"true"}]}`
	if r := e.do("PUT", "/fleet/v1/units/j.service", "application/json", good); r.code != 201 {
		t.Fatalf("oneshot job: %d %s", r.code, r.body)
	}
	u, err := e.store.Unit(e.ctx(), "j.service")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "no runs", e.do("GET", "/fleet/v1/jobs/j.service", "", ""), 200, `{"unit":"j.service","runs":[]}`)
	fin := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, rec := range []store.JobRecord{
		{Unit: "j.service", Machine: machineA, Result: store.JobSucceeded, UnitResult: "success", Hash: u.Hash, Finished: fin},
		{Unit: "j.service", Machine: "other", Result: store.JobFailed, UnitResult: "exit-code", Hash: u.Hash, Finished: fin},
	} {
		if err := e.store.PutJob(e.ctx(), rec); err != nil {
			t.Fatal(err)
		}
	}
	r = e.do("GET", "/fleet/v1/jobs/j.service", "", "")
	var runs JobRuns
	if err := json.Unmarshal([]byte(r.body), &runs); err != nil || r.code != 200 {
		t.Fatalf("GET jobs: %d %s", r.code, r.body)
	}
	if len(runs.Runs) != 2 || runs.Runs[0].MachineID != machineA || runs.Runs[0].Result != "succeeded" || runs.Runs[1].UnitResult != "exit-code" || !runs.Runs[0].Finished.Equal(fin) {
		t.Fatalf("runs = %+v", runs)
	}
	// The succeeded run shows in /state (its machine publishes none any
	// more); the failed one does not (a failed job stays where it failed,
	// whose agent publishes its state).
	r = e.do("GET", "/fleet/v1/state", "", "")
	if r.code != 200 || !strings.Contains(r.body, `"result":"success"`) || strings.Contains(r.body, "other") {
		t.Fatalf("state: %d %s", r.code, r.body)
	}
	expect(t, "delete", e.do("DELETE", "/fleet/v1/jobs/j.service", "", ""), 204, "")
	expect(t, "deleted", e.do("GET", "/fleet/v1/jobs/j.service", "", ""), 200, `{"unit":"j.service","runs":[]}`)
	if r := e.do("POST", "/fleet/v1/jobs/j.service", "", ""); r.code != 405 {
		t.Fatalf("POST jobs: %d", r.code)
	}
}

func TestWithJobStates(t *testing.T) {
	opts := []fleet.UnitOption{{Section: "Service", Name: "Type", Value: "oneshot"}}
	u := fleet.Unit{Name: "j.service", Options: opts, Hash: unitfile.Hash(opts)}
	live := []fleet.UnitState{{Name: "a.service", MachineID: "m1"}, {Name: "j.service", MachineID: "m2", ActiveState: "activating"}}
	jobs := []store.JobRecord{
		{Unit: "j.service", Machine: "m1", Result: store.JobSucceeded, UnitResult: "success", Hash: u.Hash},
		{Unit: "j.service", Machine: "m2", Result: store.JobSucceeded, UnitResult: "success", Hash: u.Hash}, // live state wins
		{Unit: "j.service", Machine: "m3", Result: store.JobSucceeded, UnitResult: "success", Hash: "old"},  // another file
		{Unit: "gone.service", Machine: "m1", Result: store.JobSucceeded, Hash: "h"},                        // destroyed
	}
	got := withJobStates(live, jobs, []fleet.Unit{u})
	if len(got) != 3 || got[1].Name != "j.service" || got[1].MachineID != "m1" || got[1].Result != "success" || got[1].ActiveState != "inactive" || got[2].ActiveState != "activating" {
		t.Fatalf("withJobStates = %+v", got)
	}
}

package api

import (
	"net/http"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
)

// JobRun is one machine's record of how a Job unit's run ended (GET
// /jobs/{unit}; docs/api-extensions.md, "Jobs").
type JobRun struct {
	MachineID string `json:"machineID"`
	// Result is "succeeded" or "failed".
	Result string `json:"result"`
	// UnitResult is the runner's result of the run (systemd's: success,
	// exit-code, signal, timeout, core-dump, oom-kill, start-limit-hit).
	UnitResult string `json:"unitResult,omitempty"`
	// Exit is how the run's main process ended, e.g. "code=exited,
	// status=3/NOTIMPLEMENTED".
	Exit     string    `json:"exit,omitempty"`
	Hash     string    `json:"hash"`
	Finished time.Time `json:"finished"`
}

// JobRuns is the answer of GET /jobs/{unit}.
type JobRuns struct {
	Unit string   `json:"unit"`
	Runs []JobRun `json:"runs"`
}

func (s *Server) registerJobs(mux *http.ServeMux, p string) {
	mux.HandleFunc("GET "+p+"/jobs/{unit}", s.getJobs)
	mux.HandleFunc("DELETE "+p+"/jobs/{unit}", s.deleteJobs)
	mux.HandleFunc(p+"/jobs/{unit}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "only GET and DELETE supported against this resource")
	})
}

// getJobs answers the records of a unit's runs, sorted by machine (an
// empty list when there are none, whether or not the unit exists).
func (s *Server) getJobs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("unit")
	recs, err := s.store.Jobs(r.Context(), name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := JobRuns{Unit: name, Runs: []JobRun{}}
	for _, rec := range recs {
		out.Runs = append(out.Runs, JobRun{MachineID: rec.Machine, Result: rec.Result, UnitResult: rec.UnitResult, Exit: rec.Exit, Hash: rec.Hash, Finished: rec.Finished})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteJobs deletes the records of a unit's runs (admin), so that the job
// runs again: the engine places it again, and an agent that recorded its
// end starts it again (204).
func (s *Server) deleteJobs(w http.ResponseWriter, r *http.Request) {
	if _, err := s.store.DeleteJobs(r.Context(), r.PathValue("unit")); err != nil {
		s.storeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// withJobStates adds to states (sorted by name, machine) a state for each
// succeeded run of a Job unit's current file on a machine that publishes
// none for it any more (a succeeded job leaves its machine): inactive/dead
// with the run's result, so that list-units shows it as succeeded.
func withJobStates(states []fleet.UnitState, jobs []store.JobRecord, units []fleet.Unit) []fleet.UnitState {
	if len(jobs) == 0 {
		return states
	}
	hashes := make(map[string]string, len(units))
	for _, u := range units {
		hashes[u.Name] = u.Hash
	}
	have := make(map[[2]string]bool, len(states))
	for _, st := range states {
		have[[2]string{st.Name, st.MachineID}] = true
	}
	added := false
	for _, r := range jobs {
		h, ok := hashes[r.Unit]
		if !ok || !r.Succeeded(h) || have[[2]string{r.Unit, r.Machine}] {
			continue
		}
		states = append(states, fleet.UnitState{
			Name: r.Unit, MachineID: r.Machine, Hash: r.Hash,
			LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
			Since: r.Finished, Result: r.UnitResult,
		})
		added = true
	}
	if added {
		sortStates(states)
	}
	return states
}

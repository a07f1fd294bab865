package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// UnitState is a unit's state on one machine, on the wire.
type UnitState struct {
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	Name               string `json:"name,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
	// Result is the runner's result of the unit's last run (an
	// extension: docs/api-extensions.md).
	Result string `json:"result,omitempty"`
	// Exit is how the main process of the last run ended, e.g.
	// "code=exited, status=3/NOTIMPLEMENTED" (an extension).
	Exit string `json:"exit,omitempty"`
}

// UnitStatePage is a page of unit states.
type UnitStatePage struct {
	NextPageToken string       `json:"nextPageToken,omitempty"`
	States        []*UnitState `json:"states,omitempty"`
}

func wireState(st fleet.UnitState) *UnitState {
	return &UnitState{
		Hash:               st.Hash,
		MachineID:          st.MachineID,
		Name:               st.Name,
		SystemdActiveState: st.ActiveState,
		SystemdLoadState:   st.LoadState,
		SystemdSubState:    st.SubState,
		Result:             st.Result,
		Exit:               st.Exit,
	}
}

// unitStates is store.UnitStates with the states of succeeded Job units
// that left their machines (withJobStates).
func (s *Server) unitStates(r *http.Request) ([]fleet.UnitState, error) {
	ctx := r.Context()
	var src StateSource = s.store
	if s.states != nil {
		src = s.states
	}
	states, err := src.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	jobs, err := src.AllJobs(ctx)
	if err != nil || len(jobs) == 0 {
		return states, err
	}
	units, err := s.store.Units(ctx)
	if err != nil {
		return nil, err
	}
	return withJobStates(states, jobs, units), nil
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok, err := s.pageFromQuery(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all, err := s.unitStates(r)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	machineID, unitName := q.Get("machineID"), q.Get("unitName")
	states := all[:0:0]
	for _, st := range all {
		if (machineID == "" || st.MachineID == machineID) && (unitName == "" || st.Name == unitName) {
			states = append(states, st)
		}
	}
	start, end, next := pageBounds(tok, len(states))
	page := UnitStatePage{NextPageToken: next}
	for _, st := range states[start:end] {
		page.States = append(page.States, wireState(st))
	}
	writeJSON(w, http.StatusOK, page)
}

// getState answers the state of the unit on the first machine (by ID) that
// published one; 404 when none did (fleet panicked here).
func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	all, err := s.unitStates(r)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	for _, st := range all {
		if st.Name == name {
			writeJSON(w, http.StatusOK, wireState(st))
			return
		}
	}
	writeError(w, http.StatusNotFound, msgStateNotFound)
}

// sortStates sorts states by (name, machine), as store.UnitStates does.
func sortStates(states []fleet.UnitState) {
	slices.SortFunc(states, func(a, b fleet.UnitState) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.MachineID, b.MachineID)
	})
}

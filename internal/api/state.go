package api

import (
	"net/http"

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
	}
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok, err := s.pageFromQuery(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all, err := s.store.UnitStates(r.Context())
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
	all, err := s.store.UnitStates(r.Context())
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

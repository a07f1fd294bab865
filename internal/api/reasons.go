package api

import (
	"net/http"
	"sort"

	"github.com/fleetd/fleet/internal/fleet"
)

// ReasonList is the answer of GET /reasons.
type ReasonList struct {
	Reasons []fleet.Reason `json:"reasons,omitempty"`
}

func (s *Server) listReasons(w http.ResponseWriter, r *http.Request) {
	m, err := s.store.Reasons(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	var list ReasonList
	for unit, reason := range m {
		if reason.Unit == "" {
			reason.Unit = unit
		}
		list.Reasons = append(list.Reasons, reason)
	}
	sort.Slice(list.Reasons, func(i, j int) bool { return list.Reasons[i].Unit < list.Reasons[j].Unit })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getReason(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	reason, ok, err := s.store.Reason(r.Context(), name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, msgNoProblem)
		return
	}
	if reason.Unit == "" {
		reason.Unit = name
	}
	writeJSON(w, http.StatusOK, reason)
}

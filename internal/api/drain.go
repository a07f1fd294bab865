package api

import (
	"net/http"

	"github.com/fleetd/fleet/internal/fleet"
)

// drainMachine answers PUT (drain) and DELETE (undrain) on
// /machines/{id}/drain. A draining machine gets no units; the ones it has
// move elsewhere (docs/api-extensions.md). The mark is the dynamic
// metadata key "draining".
func (s *Server) drainMachine(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	if r.Method == http.MethodDelete {
		err = s.store.DeleteMetadata(r.Context(), id, fleet.DrainMetadataKey)
	} else {
		err = s.store.SetMetadata(r.Context(), id, fleet.DrainMetadataKey, "true")
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusNoContent, nil)
}

package api

import (
	"errors"
	"github.com/fleetd/fleet/internal/fleet"
	"net/http"
	"regexp"
)

// Machine is a machine on the wire.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	// Capacity is our extension: what the machine offers to units'
	// [X-Fleet] CPU= and Memory= reservations (absent when unknown).
	// fleet's clients ignore it.
	Capacity *fleet.Resources `json:"capacity,omitempty"`
}

// MachinePage is a page of machines.
type MachinePage struct {
	Machines      []*Machine `json:"machines,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// MachinePatchOp is one operation of PATCH /machines, in fleet's real
// (nested) wire format: {"op":"add","path":"/<id>/metadata/<key>","value":{"value":"v"}}.
type MachinePatchOp struct {
	Op    string              `json:"op"`
	Path  string              `json:"path"`
	Value MachinePatchOpValue `json:"value"`
}

// MachinePatchOpValue is the nested value of a MachinePatchOp.
type MachinePatchOpValue struct {
	Value string `json:"value"`
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
	tok, err := s.pageFromQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ms, err := s.store.Machines(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	start, end, next := pageBounds(tok, len(ms))
	page := MachinePage{NextPageToken: next}
	for _, m := range ms[start:end] {
		am := &Machine{ID: m.ID, Metadata: m.Metadata, PrimaryIP: m.PublicIP}
		if m.Capacity != (fleet.Resources{}) {
			c := m.Capacity
			am.Capacity = &c
		}
		page.Machines = append(page.Machines, am)
	}
	writeJSON(w, http.StatusOK, page)
}

// metadataPath is fleet's path rule of a machine metadata patch.
const metadataPath = `^/([^/]+)/metadata/([A-Za-z0-9_.-]+)$`

type metadataChange struct{ machine, key, value string }

// validatePatch checks every op (in fleet's order: op, path, value) and
// returns the changes to apply.
func validatePatch(ops []MachinePatchOp, re *regexp.Regexp) ([]metadataChange, error) {
	changes := make([]metadataChange, 0, len(ops))
	for _, op := range ops {
		if op.Op != "add" && op.Op != "remove" && op.Op != "replace" {
			return nil, errors.New("invalid op: expect add, remove, or replace")
		}
		m := re.FindStringSubmatch(op.Path)
		if m == nil {
			return nil, errors.New("machine metadata path invalid")
		}
		c := metadataChange{machine: m[1], key: m[2]}
		if op.Op != "remove" {
			if op.Value.Value == "" {
				return nil, errors.New("invalid value: add and replace require a value")
			}
			c.value = op.Value.Value
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// patchMachines validates every op before applying any, then applies them in
// order: add and replace set the value, remove sets "" (hides the key).
func (s *Server) patchMachines(w http.ResponseWriter, r *http.Request) {
	var ops []MachinePatchOp
	if code, msg := decodeBody(w, r, &ops, ""); code != 0 {
		writeError(w, code, msg)
		return
	}
	changes, err := validatePatch(ops, s.metadataRe)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, c := range changes {
		if err := s.store.SetMetadata(r.Context(), c.machine, c.key, c.value); err != nil {
			s.storeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusNoContent, nil)
}

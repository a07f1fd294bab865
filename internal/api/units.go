package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// Wire entities of /fleet/v1. Field order is alphabetical and every field
// is omitempty, as in fleet's generated code.

// UnitOption is one option of a unit on the wire.
type UnitOption struct {
	Name    string `json:"name,omitempty"`
	Section string `json:"section,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Unit is a unit on the wire.
type Unit struct {
	CurrentState string        `json:"currentState,omitempty"`
	DesiredState string        `json:"desiredState,omitempty"`
	MachineID    string        `json:"machineID,omitempty"`
	Name         string        `json:"name,omitempty"`
	Options      []*UnitOption `json:"options,omitempty"`
}

// UnitPage is a page of units.
type UnitPage struct {
	NextPageToken string  `json:"nextPageToken,omitempty"`
	Units         []*Unit `json:"units,omitempty"`
}

func wireOptions(opts []fleet.UnitOption) []*UnitOption {
	out := make([]*UnitOption, len(opts))
	for i, o := range opts {
		out[i] = &UnitOption{Name: o.Name, Section: o.Section, Value: o.Value}
	}
	return out
}

func domainOptions(opts []*UnitOption) []fleet.UnitOption {
	out := make([]fleet.UnitOption, 0, len(opts))
	for _, o := range opts {
		if o == nil {
			out = append(out, fleet.UnitOption{})
			continue
		}
		out = append(out, fleet.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	return out
}

// isGlobal reports whether the unit's [X-Fleet] says Global=true.
func isGlobal(u fleet.Unit) bool {
	req, _, err := unitfile.Requirements(u.Name, u.Options)
	return err == nil && req.Global
}

// stateIndex maps (unit, machine) to the published state.
type stateIndex map[[2]string]fleet.UnitState

func indexStates(states []fleet.UnitState) stateIndex {
	idx := make(stateIndex, len(states))
	for _, st := range states {
		idx[[2]string{st.Name, st.MachineID}] = st
	}
	return idx
}

// wireUnit computes the wire unit: current state is inactive unless the
// unit is placed on a machine that published a state for it; then it is the
// state's job state (loaded if the agent did not say). Global units have no
// machine ID and are reported inactive, as fleet does.
func wireUnit(u fleet.Unit, placements []string, states stateIndex) *Unit {
	wu := &Unit{
		CurrentState: string(fleet.JobStateInactive),
		DesiredState: string(u.DesiredState),
		Name:         u.Name,
		Options:      wireOptions(u.Options),
	}
	if isGlobal(u) || len(placements) == 0 {
		return wu
	}
	m := placements[0]
	wu.MachineID = m
	if st, ok := states[[2]string{u.Name, m}]; ok {
		if st.JobState != "" {
			wu.CurrentState = string(st.JobState)
		} else {
			wu.CurrentState = string(fleet.JobStateLoaded)
		}
	}
	return wu
}

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) {
	tok, err := s.pageFromQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	units, err := s.store.Units(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	start, end, next := pageBounds(tok, len(units))
	page := UnitPage{NextPageToken: next}
	if end > start {
		states, err := s.store.UnitStates(ctx)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		sched, err := s.store.Schedule(ctx)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		placements := make(map[string][]string)
		for _, e := range sched { // sorted by (unit, machine)
			placements[e.Unit] = append(placements[e.Unit], e.Machine)
		}
		idx := indexStates(states)
		for _, u := range units[start:end] {
			page.Units = append(page.Units, wireUnit(u, placements[u.Name], idx))
		}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getUnit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx := r.Context()
	u, err := s.store.Unit(ctx, name)
	if s.unitError(w, r, err) {
		return
	}
	pl, err := s.store.Placements(ctx, name)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	var idx stateIndex
	if len(pl) > 0 {
		states, err := s.store.UnitStates(ctx)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		idx = indexStates(states)
	}
	writeJSON(w, http.StatusOK, wireUnit(u, pl, idx))
}

func (s *Server) deleteUnit(w http.ResponseWriter, r *http.Request) {
	s.unitChanged(w, r, s.store.DestroyUnit(r.Context(), r.PathValue("name")))
}

// unitError answers err, if any, of a store call about one unit: 404 when
// the unit does not exist, else as storeError. It reports whether it
// answered.
func (s *Server) unitError(w http.ResponseWriter, r *http.Request, err error) bool {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, msgUnitNotFound)
		return true
	}
	if err != nil {
		s.storeError(w, r, err)
		return true
	}
	return false
}

// unitChanged answers a change of one unit: 204, or its error (unitError).
func (s *Server) unitChanged(w http.ResponseWriter, r *http.Request, err error) {
	if !s.unitError(w, r, err) {
		writeJSON(w, http.StatusNoContent, nil)
	}
}

// checkJSONContentType applies fleet's Content-Type rule: exactly one
// header whose media type is application/json.
func checkJSONContentType(r *http.Request) (int, string) {
	cts := r.Header.Values("Content-Type")
	if len(cts) != 1 {
		return http.StatusUnsupportedMediaType, fmt.Sprintf("expected 1 Content-Type, got %d", len(cts))
	}
	mt, _, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "only acceptable Content-Type is application/json"
	}
	return 0, ""
}

// decodeBody decodes one JSON value from the (size-limited) body into v.
// It returns the status and message to answer on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, prefix string) (int, string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", MaxBodyBytes)
		}
		return http.StatusBadRequest, prefix + err.Error()
	}
	// encoding/json would silently replace invalid bytes with U+FFFD and
	// store something other than what was sent.
	if len(body) == 0 {
		return http.StatusBadRequest, prefix + "EOF" // what fleet's decoder said
	}
	if !utf8.Valid(body) {
		return http.StatusBadRequest, prefix + "body is not valid UTF-8"
	}
	if err := json.Unmarshal(body, v); err != nil {
		return http.StatusBadRequest, prefix + err.Error()
	}
	return 0, ""
}

// invalidDesiredState is the 400 message of an unknown desired state.
func invalidDesiredState(ds string) string {
	return fmt.Sprintf("invalid desiredState %q: expect inactive, loaded or launched", ds)
}

// putUnit follows fleet's decision tree (see doc.go); nothing is stored
// when it answers an error.
func (s *Server) putUnit(w http.ResponseWriter, r *http.Request) {
	// 1. Content-Type.
	if code, msg := checkJSONContentType(r); code != 0 {
		writeError(w, code, msg)
		return
	}
	// 2. Body.
	var body Unit
	if code, msg := decodeBody(w, r, &body, "unable to decode body: "); code != 0 {
		writeError(w, code, msg)
		return
	}
	// 3. Name.
	name := r.PathValue("name")
	if body.Name == "" {
		body.Name = name
	} else if body.Name != name {
		writeError(w, http.StatusBadRequest,
			fmt.Sprintf("name in URL %q differs from unit name in request body %q", name, body.Name))
		return
	}
	// 4. Name validation, and (our fix) desired state validation.
	if err := unitfile.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ds fleet.JobState
	if body.DesiredState != "" {
		var err error
		if ds, err = fleet.ParseJobState(body.DesiredState); err != nil {
			writeError(w, http.StatusBadRequest, invalidDesiredState(body.DesiredState))
			return
		}
	}
	ctx := r.Context()
	opts := domainOptions(body.Options)
	existing, err := s.store.Unit(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeError(w, r, err)
		return
	}
	// 5. Absent: create. 6. Present with different options: replace.
	if !exists && len(opts) == 0 {
		writeError(w, http.StatusConflict, "unit does not exist and options field empty")
		return
	}
	if len(opts) > 0 {
		hash := unitfile.Hash(opts)
		if !exists || hash != existing.Hash {
			s.createUnit(w, r, fleet.Unit{Name: name, Options: opts, Hash: hash, DesiredState: ds})
			return
		}
	}
	// 7. Desired state change.
	if ds == "" {
		writeError(w, http.StatusConflict, "must provide DesiredState to update existing unit")
		return
	}
	if fleet.IsTemplate(name) && ds != fleet.JobStateInactive {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot activate template %q", name))
		return
	}
	s.unitChanged(w, r, s.store.SetDesiredState(ctx, name, ds))
}

// WarningHeader carries, once per warning, what a unit submitted with PUT
// /units/{name} contains that systemd would ignore, e.g.
// "x.service: Unknown key name 'ExecStrat' in section 'Service', ignoring.".
const WarningHeader = "X-Fleet-Warning"

func (s *Server) createUnit(w http.ResponseWriter, r *http.Request, u fleet.Unit) {
	if err := unitfile.ValidateOptions(u.Name, u.Options); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.checkTimer(r.Context(), w, r, u) { // timers.go
		return
	}
	if u.DesiredState == "" {
		u.DesiredState = fleet.JobStateInactive
	}
	if fleet.IsTemplate(u.Name) && u.DesiredState != fleet.JobStateInactive {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot activate template %q", u.Name))
		return
	}
	created, err := s.store.CreateUnit(r.Context(), u)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if created {
		s.recordRevision(r, u)
	}
	// The unit is accepted, but keys systemd would ignore are named (one
	// header per warning; see docs/api-extensions.md).
	for _, warning := range unitfile.UnknownKeyWarnings(u.Name, u.Options) {
		w.Header().Add(WarningHeader, warning)
	}
	writeJSON(w, http.StatusCreated, nil)
}

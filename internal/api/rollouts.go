package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// The rollouts extension (docs/api-extensions.md, "Rollouts"): rolling,
// health-gated updates of a unit or template. The API creates rollout
// records and flips their phase; the engine leader drives them.
//
//	POST /fleet/v1/rollouts                      {"unit","options",gates}   201 record+progress
//	GET  /fleet/v1/rollouts                      {"rollouts":[record+progress...]}
//	GET  /fleet/v1/rollouts/{unit}               record+progress; 404 "no rollout of X"
//	POST /fleet/v1/rollouts/{unit}/pause|resume|abort                       200 record+progress
//	POST /fleet/v1/rollouts/{unit}/undo          {"toRevision":N,gates}     201 record+progress
//	GET  /fleet/v1/units/{name}/history          {"revisions":[...]} oldest first
//
// gates: "maxParallel" (default 1), "maxSurge" (default 0),
// "minHealthyTime" (Go duration, default 10s), "healthyDeadline" (default
// 5m), "autoRevert".

// Rollout defaults.
const (
	DefaultMaxParallel     = 1
	DefaultMinHealthyTime  = 10 * time.Second
	DefaultHealthyDeadline = 5 * time.Minute
)

// rolloutUpdateAttempts bounds the compare-and-swap retries of pause,
// resume and abort (the leader writes the record at every step).
const rolloutUpdateAttempts = 5

// RolloutGates are the gate fields of a rollout request.
type RolloutGates struct {
	MaxParallel     *int   `json:"maxParallel,omitempty"`
	MaxSurge        int    `json:"maxSurge,omitempty"`
	MinHealthyTime  string `json:"minHealthyTime,omitempty"`
	HealthyDeadline string `json:"healthyDeadline,omitempty"`
	AutoRevert      bool   `json:"autoRevert,omitempty"`
}

// RolloutRequest is the body of POST /rollouts.
type RolloutRequest struct {
	Unit    string        `json:"unit"`
	Options []*UnitOption `json:"options"`
	RolloutGates
}

// UndoRequest is the body of POST /rollouts/{unit}/undo.
type UndoRequest struct {
	// ToRevision is the revision to go back to; 0 is the one before the
	// current one.
	ToRevision int `json:"toRevision,omitempty"`
	RolloutGates
}

// RolloutJSON is a rollout record on the wire: the record plus a line for
// people (rollout.Progress).
type RolloutJSON struct {
	rollout.Rollout
	Progress string `json:"progress"`
}

// RevisionJSON is one entry of GET /units/{name}/history.
type RevisionJSON struct {
	Revision int       `json:"revision"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	User     string    `json:"user,omitempty"`
	Current  bool      `json:"current,omitempty"`
}

func (s *Server) registerRollouts(mux *http.ServeMux, p string) {
	notAllowed := func(msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusMethodNotAllowed, msg) }
	}
	mux.HandleFunc("GET "+p+"/rollouts", s.listRollouts)
	mux.HandleFunc("POST "+p+"/rollouts", s.postRollout)
	mux.HandleFunc(p+"/rollouts", notAllowed("only GET and POST supported against this resource"))
	mux.HandleFunc("GET "+p+"/rollouts/{unit}", s.getRollout)
	mux.HandleFunc(p+"/rollouts/{unit}", notAllowed(msgOnlyGet))
	for _, action := range []string{"pause", "resume", "abort"} {
		mux.HandleFunc("POST "+p+"/rollouts/{unit}/"+action, s.rolloutAction(action))
		mux.HandleFunc(p+"/rollouts/{unit}/"+action, notAllowed(msgOnlyPost))
	}
	mux.HandleFunc("POST "+p+"/rollouts/{unit}/undo", s.undoRollout)
	mux.HandleFunc(p+"/rollouts/{unit}/undo", notAllowed(msgOnlyPost))
	mux.HandleFunc("GET "+p+"/units/{name}/history", s.unitHistory)
	mux.HandleFunc(p+"/units/{name}/history", notAllowed(msgOnlyGet))
}

func rolloutJSON(r rollout.Rollout) RolloutJSON {
	if r.Targets == nil {
		r.Targets = []rollout.Target{}
	}
	return RolloutJSON{Rollout: r, Progress: rollout.Progress(r)}
}

// callerName is who made r, for rollout records and revisions: the
// certificate's name, "local" over the unix socket or loopback, else the
// caller's role ("admin").
func callerName(r *http.Request) string {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		if auth.IsUnixSocket(r) || auth.IsLoopback(r.RemoteAddr) {
			return "local"
		}
		return "admin"
	}
	switch {
	case id.Name != "":
		return id.Name
	case id.Via == auth.ViaSocket || id.Via == auth.ViaLoopback:
		return "local"
	}
	return id.Role.String()
}

// decodeStrict decodes one JSON object from the (size-limited) body into v,
// refusing unknown fields and trailing data. An empty body is allowed when
// emptyOK (v keeps its zero value). It returns the status and message to
// answer on failure.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) (int, string) {
	const prefix = "unable to decode body: "
	if !emptyOK {
		if code, msg := checkJSONContentType(r); code != 0 {
			return code, msg
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", MaxBodyBytes)
		}
		return http.StatusBadRequest, prefix + err.Error()
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return 0, ""
		}
		return http.StatusBadRequest, prefix + "EOF"
	}
	if emptyOK {
		if code, msg := checkJSONContentType(r); code != 0 {
			return code, msg
		}
	}
	if !utf8.Valid(body) {
		return http.StatusBadRequest, prefix + "body is not valid UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, prefix + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, prefix + "trailing data after the JSON object"
	}
	return 0, ""
}

// spec turns the gates into a spec's gate fields, or an error message (400).
func (g RolloutGates) spec() (rollout.Spec, error) {
	sp := rollout.Spec{
		MaxParallel:     DefaultMaxParallel,
		MinHealthyTime:  DefaultMinHealthyTime,
		HealthyDeadline: DefaultHealthyDeadline,
		AutoRevert:      g.AutoRevert,
	}
	if g.MaxParallel != nil {
		if *g.MaxParallel < 1 {
			return sp, errors.New("maxParallel must be at least 1")
		}
		sp.MaxParallel = *g.MaxParallel
	}
	if g.MaxSurge < 0 {
		return sp, fmt.Errorf("maxSurge must not be negative, got %d", g.MaxSurge)
	}
	sp.MaxSurge = g.MaxSurge
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"minHealthyTime", g.MinHealthyTime, &sp.MinHealthyTime}, {"healthyDeadline", g.HealthyDeadline, &sp.HealthyDeadline}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil {
			return sp, fmt.Errorf("invalid %s %q: expect a duration such as 10s or 5m", d.name, d.v)
		}
		*d.dst = v
	}
	if sp.MinHealthyTime < 0 {
		return sp, fmt.Errorf("minHealthyTime must not be negative, got %s", sp.MinHealthyTime)
	}
	if sp.HealthyDeadline <= 0 {
		return sp, fmt.Errorf("healthyDeadline must be positive, got %s", sp.HealthyDeadline)
	}
	if sp.HealthyDeadline < sp.MinHealthyTime {
		return sp, fmt.Errorf("healthyDeadline (%s) must be at least minHealthyTime (%s)", sp.HealthyDeadline, sp.MinHealthyTime)
	}
	return sp, nil
}

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

func (s *Server) postRollout(w http.ResponseWriter, r *http.Request) {
	var body RolloutRequest
	if code, msg := decodeStrict(w, r, &body, false); code != 0 {
		writeError(w, code, msg)
		return
	}
	if body.Unit == "" {
		writeError(w, http.StatusBadRequest, "unit is required")
		return
	}
	if len(body.Options) == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("options are required: the new file of %s", body.Unit))
		return
	}
	sp, err := body.spec()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.startRollout(w, r, body.Unit, domainOptions(body.Options), sp)
}

func (s *Server) undoRollout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("unit")
	var body UndoRequest
	if code, msg := decodeStrict(w, r, &body, true); code != 0 {
		writeError(w, code, msg)
		return
	}
	if body.ToRevision < 0 {
		writeError(w, http.StatusBadRequest, "toRevision must not be negative (0: the revision before the current one)")
		return
	}
	sp, err := body.spec()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := unitfile.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	u, _, err := s.unitWithRev(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unit %s does not exist", name))
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	revs, err := s.store.Revisions(ctx, store.RevisionOwner(name))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	to, ok := undoTarget(revs, u.Hash, body.ToRevision)
	if !ok {
		kept := make([]string, len(revs))
		for i, rv := range revs {
			kept[i] = strconv.Itoa(rv.Revision)
		}
		keptList := "none"
		if len(kept) > 0 {
			keptList = strings.Join(kept, ", ")
		}
		if body.ToRevision == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no revision before the current one (kept: %s)", name, keptList))
		} else {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no revision %d (kept: %s)", name, body.ToRevision, keptList))
		}
		return
	}
	sp.Undo = true
	s.startRollout(w, r, name, to.Options, sp)
}

// undoTarget picks the revision undo goes to: want, or (want 0) the newest
// kept revision older than the current file's that holds another file.
func undoTarget(revs []store.Revision, current string, want int) (store.Revision, bool) {
	if want > 0 {
		for _, rv := range revs {
			if rv.Revision == want {
				return rv, true
			}
		}
		return store.Revision{}, false
	}
	curRev := 0
	for _, rv := range revs {
		if rv.Hash == current {
			curRev = rv.Revision
		}
	}
	for i := len(revs) - 1; i >= 0; i-- { // newest first
		rv := revs[i]
		if rv.Hash != current && (curRev == 0 || rv.Revision < curRev) {
			return rv, true
		}
	}
	return store.Revision{}, false
}

// unitWithRev reads a unit and the mod revision of its key, or
// store.ErrNotFound.
func (s *Server) unitWithRev(ctx context.Context, name string) (fleet.Unit, int64, error) {
	kv, found, _, err := s.store.KV().Get(ctx, s.store.Layout().Unit(name))
	if err != nil {
		return fleet.Unit{}, 0, fmt.Errorf("unit %q: %w", name, err)
	}
	if !found {
		return fleet.Unit{}, 0, fmt.Errorf("unit %q: %w", name, store.ErrNotFound)
	}
	var u fleet.Unit
	if err := json.Unmarshal(kv.Value, &u); err != nil {
		return fleet.Unit{}, 0, fmt.Errorf("unit %q: decode: %w", name, err)
	}
	u.Name = name
	return u, kv.ModRev, nil
}

// activeRolloutMessage is the 409 message for a unit with a rollout that
// is not over.
func activeRolloutMessage(r rollout.Rollout) string {
	return fmt.Sprintf("a rollout of %s is in progress: revision %d (%s), %s (%s); pause, abort or wait for it",
		r.Unit, r.ToRevision, short(r.ToHash), r.Phase, rollout.Progress(r))
}

// notRolled says why nothing of u was rolled, for the 422 message.
func notRolled(u fleet.Unit, global bool) string {
	switch {
	case fleet.IsTemplate(u.Name):
		return "no instances were rolled: none is launched"
	case u.DesiredState != fleet.JobStateLaunched:
		return "nothing was rolled: it is not launched"
	case global:
		return "no machines were rolled: it is not scheduled on any machine"
	}
	return "nothing was rolled: it is not launched"
}

// startRollout is the common path of POST /rollouts and undo: name's new
// file is opts; sp holds the gates (and Undo).
func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, name string, opts []fleet.UnitOption, sp rollout.Spec) {
	ctx := r.Context()
	// 1. Validate as PUT /units does.
	if err := unitfile.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if n := unitfile.ParseName(name); n.IsInstance {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"%s is an instance of %s: roll out the template (its instances share its revisions)", name, n.TemplateName()))
		return
	}
	if err := unitfile.ValidateOptions(name, opts); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// 2. The unit, and where it is.
	cur, modRev, err := s.unitWithRev(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unit %s does not exist", name))
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	global := isGlobal(cur)
	newFile := fleet.Unit{Name: name, Options: opts, Hash: unitfile.Hash(opts), DesiredState: cur.DesiredState}
	if isGlobal(newFile) != global {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"%s: a rollout cannot change [X-Fleet] Global= (now %t): replace the unit instead (fleetctl submit --replace, or destroy and start it)",
			name, global))
		return
	}
	owner := store.RevisionOwner(name)
	revs, err := s.store.Revisions(ctx, owner)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	var from *store.Revision
	for i := range revs {
		if revs[i].Hash == cur.Hash {
			from = &revs[i]
		}
	}
	// 3. One rollout at a time (StartRollout checks again, atomically).
	switch prev, err := s.store.Rollout(ctx, name); {
	case err == nil && !prev.Rollout.Phase.Terminal():
		writeError(w, http.StatusConflict, activeRolloutMessage(prev.Rollout))
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.storeError(w, r, err)
		return
	}
	if newFile.Hash == cur.Hash {
		if from != nil {
			writeError(w, http.StatusConflict, fmt.Sprintf("nothing to roll: %s is already at revision %d (%s)", name, from.Revision, short(cur.Hash)))
		} else {
			writeError(w, http.StatusConflict, fmt.Sprintf("nothing to roll: %s is already at this file (%s)", name, short(cur.Hash)))
		}
		return
	}
	targets, idle, err := s.rolloutTargets(ctx, cur, global)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	user := callerName(r)
	now := time.Now()
	sp.Unit, sp.Global, sp.User = name, global, user
	sp.FromHash, sp.ToHash = cur.Hash, newFile.Hash
	if err := rollout.Validate(sp, targets); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// 4. The current file becomes a revision if it is not kept yet, so
	// that the rollout has one to go back to.
	if from == nil {
		rv, err := s.store.RecordRevision(ctx, owner, cur, "", now)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		from = &rv
		revs = append(revs, rv)
	}
	toRev := store.Revision{Unit: owner, Revision: store.NextRevision(revs), Hash: newFile.Hash, Options: opts, Time: now.UTC(), User: user}
	sp.FromRevision, sp.ToRevision = from.Revision, toRev.Revision

	// 5. Nothing runs it: update the file, no rollout.
	if len(targets) == 0 {
		if _, err := s.store.CreateUnit(ctx, newFile); err != nil {
			s.storeError(w, r, err)
			return
		}
		if rv, err := s.store.RecordRevision(ctx, owner, newFile, user, now); err != nil {
			s.log.Warn("api: recording revision", "unit", name, "err", err)
		} else {
			toRev = rv
		}
		s.updateIdle(ctx, idle, opts)
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s updated to revision %d (%s); %s",
			name, toRev.Revision, short(newFile.Hash), notRolled(cur, global)))
		return
	}
	ro, err := rollout.New(sp, targets, now.UTC())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// 6. The record, the template's (or global unit's) new file and the
	// new revision, all or nothing. A plain unit is its only target: the
	// driver rewrites it.
	file := newFile
	if !fleet.IsTemplate(name) && !global {
		file = fleet.Unit{}
	}
	if err := s.store.StartRollout(ctx, ro, file, modRev, toRev); err != nil {
		switch {
		case errors.Is(err, store.ErrRolloutActive):
			msg := strings.TrimPrefix(err.Error(), "store: ")
			if prev, rerr := s.store.Rollout(ctx, name); rerr == nil && !prev.Rollout.Phase.Terminal() {
				msg = activeRolloutMessage(prev.Rollout)
			}
			writeError(w, http.StatusConflict, msg)
		case errors.Is(err, store.ErrConflict):
			writeError(w, http.StatusConflict, fmt.Sprintf("%s changed meanwhile; try again", name))
		default:
			s.storeError(w, r, err)
		}
		return
	}
	// 7. Instances that run nothing take the new file at once.
	s.updateIdle(ctx, idle, opts)
	writeJSON(w, http.StatusCreated, rolloutJSON(ro))
}

// rolloutTargets returns what a rollout of u moves (sorted) and, for a
// template, its instances that are not launched (they take the new file at
// once).
func (s *Server) rolloutTargets(ctx context.Context, u fleet.Unit, global bool) (targets []string, idle []fleet.Unit, err error) {
	switch {
	case fleet.IsTemplate(u.Name):
		units, err := s.store.Units(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, in := range units {
			n := unitfile.ParseName(in.Name)
			if !n.IsInstance || n.TemplateName() != u.Name {
				continue
			}
			if in.DesiredState == fleet.JobStateLaunched {
				targets = append(targets, in.Name)
			} else {
				idle = append(idle, in)
			}
		}
		sort.Strings(targets)
	case global:
		if u.DesiredState != fleet.JobStateLaunched {
			return nil, nil, nil
		}
		targets, err = s.store.Placements(ctx, u.Name)
		if err != nil {
			return nil, nil, err
		}
	case u.DesiredState == fleet.JobStateLaunched:
		targets = []string{u.Name}
	}
	return targets, idle, nil
}

// updateIdle gives instances that are not launched the new options, with
// their own desired state (best effort: logged).
func (s *Server) updateIdle(ctx context.Context, idle []fleet.Unit, opts []fleet.UnitOption) {
	hash := unitfile.Hash(opts)
	for _, in := range idle {
		if in.Hash == hash {
			continue
		}
		nu := fleet.Unit{Name: in.Name, Options: opts, Hash: hash, DesiredState: in.DesiredState}
		if _, err := s.store.CreateUnit(ctx, nu); err != nil {
			s.log.Warn("api: updating an instance that is not launched to its template's new file", "unit", in.Name, "err", err)
		}
	}
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) {
	recs, err := s.store.Rollouts(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := struct {
		Rollouts []RolloutJSON `json:"rollouts"`
	}{Rollouts: []RolloutJSON{}}
	for _, rec := range recs {
		out.Rollouts = append(out.Rollouts, rolloutJSON(rec.Rollout))
	}
	writeJSON(w, http.StatusOK, out)
}

// rolloutRecord reads name's rollout record; it answers 404 or the store
// error and reports false when there is none.
func (s *Server) rolloutRecord(w http.ResponseWriter, r *http.Request, name string) (store.RolloutRecord, bool) {
	rec, err := s.store.Rollout(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no rollout of "+name)
		return rec, false
	}
	if err != nil {
		s.storeError(w, r, err)
		return rec, false
	}
	return rec, true
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.rolloutRecord(w, r, r.PathValue("unit"))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, rolloutJSON(rec.Rollout))
}

// rolloutAction answers POST /rollouts/{unit}/pause|resume|abort.
func (s *Server) rolloutAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("unit")
		user := callerName(r)
		for attempt := 1; ; attempt++ {
			rec, ok := s.rolloutRecord(w, r, name)
			if !ok {
				return
			}
			now := time.Now().UTC()
			var next rollout.Rollout
			var err error
			switch action {
			case "pause":
				next, err = rollout.Pause(rec.Rollout, now)
			case "resume":
				next, err = rollout.Resume(rec.Rollout, now)
			default:
				next, err = rollout.Abort(rec.Rollout, "aborted by "+user, now)
			}
			if err != nil {
				writeError(w, http.StatusConflict, err.Error())
				return
			}
			rec.Rollout = next
			_, err = s.store.UpdateRollout(r.Context(), rec)
			if err == nil {
				writeJSON(w, http.StatusOK, rolloutJSON(next))
				return
			}
			if !errors.Is(err, store.ErrConflict) {
				s.storeError(w, r, err)
				return
			}
			if attempt == rolloutUpdateAttempts {
				writeError(w, http.StatusConflict, fmt.Sprintf("the rollout of %s keeps changing; try again", name))
				return
			}
		}
	}
}

func (s *Server) unitHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx := r.Context()
	cur, err := s.store.Unit(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.storeError(w, r, err)
		return
	}
	revs, err := s.store.Revisions(ctx, store.RevisionOwner(name))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if !exists && len(revs) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unit %s does not exist and has no revisions", name))
		return
	}
	out := struct {
		Revisions []RevisionJSON `json:"revisions"`
	}{Revisions: []RevisionJSON{}}
	for _, rv := range revs {
		out.Revisions = append(out.Revisions, RevisionJSON{
			Revision: rv.Revision, Hash: rv.Hash, Time: rv.Time, User: rv.User,
			Current: exists && rv.Hash == cur.Hash,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// recordRevision keeps u, just created or replaced by PUT /units, as its
// newest revision (best effort: logged). Instances share their template's
// revisions and are skipped.
func (s *Server) recordRevision(r *http.Request, u fleet.Unit) {
	if unitfile.ParseName(u.Name).IsInstance {
		return
	}
	if _, err := s.store.RecordRevision(r.Context(), u.Name, u, callerName(r), time.Now()); err != nil {
		s.log.Warn("api: recording the revision of a submitted unit", "unit", u.Name, "err", err)
	}
}

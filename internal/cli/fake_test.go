package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

// fakeCluster is an in-memory fleetd speaking the /fleet/v1 wire protocol
// (and the reasons/status/journal extensions) with a trivial scheduler, for
// driving fleetctl through Main without a daemon.
type fakeCluster struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	units    map[string]*client.Unit
	states   map[string][]client.UnitState
	machines []client.Machine
	reasons  map[string]fleet.Reason
	statuses map[string][]client.StatusEntry
	journal  string
	pageSize int
	reqs     []string
	bodies   []string
	// schedule is called (locked) after a desired state change; the
	// default places the unit on the first machine and makes it reach
	// its state at once.
	schedule func(u *client.Unit)
	// stateHook, if set, may rewrite the states answered for GET /state
	// (called locked, with the number of such requests so far).
	stateHook func(n int, states []client.UnitState) []client.UnitState
	stateGets int
	// statusHook, if set, answers GET /status/{name} instead of statuses
	// (called locked, with the number of such requests so far).
	statusHook func(n int, name string) []client.StatusEntry
	statusGets int
	// putWarnings are sent (X-Fleet-Warning) when a unit is created.
	putWarnings map[string][]string
}

const (
	m1 = "3d1219c7aaaabbbbccccddddeeeeffff"
	m2 = "22222222aaaabbbbccccddddeeeeffff"
)

func newFakeCluster(t *testing.T) *fakeCluster {
	f := &fakeCluster{
		t:      t,
		units:  map[string]*client.Unit{},
		states: map[string][]client.UnitState{},
		machines: []client.Machine{
			{ID: m1, PrimaryIP: "127.0.0.1", Metadata: map[string]string{"region": "us-east-1"}},
			{ID: m2, PrimaryIP: "127.0.0.2"},
		},
		reasons:  map[string]fleet.Reason{},
		statuses: map[string][]client.StatusEntry{},
		pageSize: 100,
	}
	f.schedule = f.defaultSchedule
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCluster) defaultSchedule(u *client.Unit) {
	if isGlobalUnit(*u) {
		return
	}
	switch u.DesiredState {
	case "inactive":
		u.MachineID, u.CurrentState = "", "inactive"
		delete(f.states, u.Name)
	case "loaded", "launched":
		u.MachineID, u.CurrentState = m1, u.DesiredState
		active, sub := "inactive", "dead"
		if u.DesiredState == "launched" {
			active, sub = "active", "running"
		}
		f.states[u.Name] = []client.UnitState{{
			Name: u.Name, MachineID: m1, Hash: unitHash(*u),
			SystemdLoadState: "loaded", SystemdActiveState: active, SystemdSubState: sub,
		}}
	}
}

func (f *fakeCluster) addUnit(u client.Unit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.CurrentState == "" && !isGlobalUnit(u) {
		u.CurrentState = "inactive"
	}
	if u.DesiredState == "" {
		u.DesiredState = "inactive"
	}
	f.units[u.Name] = &u
	if u.DesiredState != "inactive" {
		f.schedule(f.units[u.Name])
	}
}

func (f *fakeCluster) unit(name string) *client.Unit {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.units[name]; ok {
		c := *u
		return &c
	}
	return nil
}

func (f *fakeCluster) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func (f *fakeCluster) count(prefix string) int {
	n := 0
	for _, r := range f.requests() {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func fwriteErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func fwriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// page cuts items by the page token (the start index, as a string).
func page[T any](f *fakeCluster, r *http.Request, items []T) ([]T, string, bool) {
	start := 0
	if tok := r.URL.Query().Get("nextPageToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", false
		}
		start = n
	}
	end := start + f.pageSize
	if end >= len(items) {
		// fleet emits a token whenever the page is full
		if end == len(items) && len(items) > 0 {
			return items[start:end], strconv.Itoa(end), true
		}
		return items[start:], "", true
	}
	return items[start:end], strconv.Itoa(end), true
}

func (f *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
	f.bodies = append(f.bodies, string(body))
	if r.URL.Query().Get("alt") != "json" {
		fwriteErr(w, 400, "no alt=json")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/fleet/v1/")
	switch {
	case p == "machines" && r.Method == http.MethodGet:
		ms := append([]client.Machine(nil), f.machines...)
		items, tok, ok := page(f, r, ms)
		if !ok {
			fwriteErr(w, 400, "bad token")
			return
		}
		fwriteJSON(w, 200, map[string]any{"machines": items, "nextPageToken": tok})
	case p == "units" && r.Method == http.MethodGet:
		var names []string
		for n := range f.units {
			names = append(names, n)
		}
		sort.Strings(names)
		var us []client.Unit
		for _, n := range names {
			us = append(us, *f.units[n])
		}
		items, tok, ok := page(f, r, us)
		if !ok {
			fwriteErr(w, 400, "bad token")
			return
		}
		out := map[string]any{}
		if len(items) > 0 {
			out["units"] = items
		}
		if tok != "" {
			out["nextPageToken"] = tok
		}
		fwriteJSON(w, 200, out)
	case strings.HasPrefix(p, "units/"):
		f.serveUnit(w, r, strings.TrimPrefix(p, "units/"), body)
	case p == "state" && r.Method == http.MethodGet:
		f.stateGets++
		var all []client.UnitState
		for _, ss := range f.states {
			for _, s := range ss {
				if q := r.URL.Query().Get("unitName"); q != "" && q != s.Name {
					continue
				}
				if q := r.URL.Query().Get("machineID"); q != "" && q != s.MachineID {
					continue
				}
				all = append(all, s)
			}
		}
		all = sortStates(all)
		if f.stateHook != nil {
			all = f.stateHook(f.stateGets, all)
		}
		items, tok, ok := page(f, r, all)
		if !ok {
			fwriteErr(w, 400, "bad token")
			return
		}
		fwriteJSON(w, 200, map[string]any{"states": items, "nextPageToken": tok})
	case strings.HasPrefix(p, "reasons/"):
		rs, ok := f.reasons[strings.TrimPrefix(p, "reasons/")]
		if !ok {
			fwriteErr(w, 404, "unit has no scheduling problem")
			return
		}
		fwriteJSON(w, 200, rs)
	case strings.HasPrefix(p, "status/"):
		name := strings.TrimPrefix(p, "status/")
		if f.units[name] == nil {
			fwriteErr(w, 404, "unit does not exist")
			return
		}
		var out []client.StatusEntry
		entries := f.statuses[name]
		f.statusGets++
		if f.statusHook != nil {
			entries = f.statusHook(f.statusGets, name)
		}
		for _, e := range entries {
			if m := r.URL.Query().Get("machineID"); m == "" || m == e.MachineID {
				out = append(out, e)
			}
		}
		fwriteJSON(w, 200, map[string]any{"statuses": out})
	case strings.HasPrefix(p, "journal/"):
		name := strings.TrimPrefix(p, "journal/")
		if f.units[name] == nil {
			fwriteErr(w, 404, "unit does not exist")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s[%s]\n", f.journal, r.URL.Query().Encode())
	default:
		fwriteErr(w, 404, "")
	}
}

func (f *fakeCluster) serveUnit(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	u := f.units[name]
	switch r.Method {
	case http.MethodGet:
		if u == nil {
			fwriteErr(w, 404, "unit does not exist")
			return
		}
		fwriteJSON(w, 200, u)
	case http.MethodDelete:
		if u == nil {
			fwriteErr(w, 404, "unit does not exist")
			return
		}
		delete(f.units, name)
		delete(f.states, name)
		w.WriteHeader(204)
	case http.MethodPut:
		if r.Header.Get("Content-Type") != "application/json" {
			fwriteErr(w, 415, "only acceptable Content-Type is application/json")
			return
		}
		var in client.Unit
		if err := json.Unmarshal(body, &in); err != nil {
			fwriteErr(w, 400, "unable to decode body: "+err.Error())
			return
		}
		if in.Name != "" && in.Name != name {
			fwriteErr(w, 400, "name differs")
			return
		}
		in.Name = name
		if err := unitfile.ValidateName(name); err != nil {
			fwriteErr(w, 400, err.Error())
			return
		}
		if u == nil && len(in.Options) == 0 {
			fwriteErr(w, 409, "unit does not exist and options field empty")
			return
		}
		if len(in.Options) > 0 && (u == nil || unitHash(in) != unitHash(*u)) {
			nu := &client.Unit{Name: name, Options: in.Options, DesiredState: in.DesiredState}
			if nu.DesiredState == "" {
				nu.DesiredState = "inactive"
			}
			if !isGlobalUnit(*nu) {
				nu.CurrentState = "inactive"
			}
			f.units[name] = nu
			delete(f.states, name)
			if nu.DesiredState != "inactive" {
				f.schedule(nu)
			}
			for _, warning := range f.putWarnings[name] {
				w.Header().Add(client.WarningHeader, warning)
			}
			w.WriteHeader(201)
			return
		}
		if in.DesiredState == "" {
			fwriteErr(w, 409, "must provide DesiredState to update existing unit")
			return
		}
		if unitfile.ParseName(name).Template && in.DesiredState != "inactive" {
			fwriteErr(w, 400, fmt.Sprintf("cannot activate template %q", name))
			return
		}
		u.DesiredState = in.DesiredState
		f.schedule(u)
		w.WriteHeader(204)
	default:
		fwriteErr(w, 405, "only GET, PUT and DELETE supported against this resource")
	}
}

// result is the outcome of one fleetctl run.
type result struct {
	code   int
	stdout string
	stderr string
}

// run drives fleetctl through the same path as Main, against f (unless
// the arguments name an endpoint), with fast polling.
func (f *fakeCluster) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runCLI(t, context.Background(), append([]string{"FLEETCTL_ENDPOINT=" + f.srv.URL}, env...), args...)
}

func runCLI(t *testing.T, ctx context.Context, env []string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(ctx, env, nil, &out, &errb)
	a.poll = 5 * time.Millisecond
	a.window = 40 * time.Millisecond
	a.failedGrace = 30 * time.Millisecond
	a.rolloutPoll = 5 * time.Millisecond
	code := a.main(args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

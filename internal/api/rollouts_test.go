package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/unitfile"
)

// opts builds options from section|name|value triples.
func opts(triples ...string) []fleet.UnitOption {
	var out []fleet.UnitOption
	for _, o := range triples {
		f := strings.SplitN(o, "|", 3)
		out = append(out, fleet.UnitOption{Section: f[0], Name: f[1], Value: f[2]})
	}
	return out
}

var (
	webV1 = []string{"Unit|Description|web %i", "Service|ExecStart|/bin/web v1"}
	webV2 = []string{"Unit|Description|web %i", "Service|ExecStart|/bin/web v2"}
)

// rolloutBody is a POST /rollouts body for unit with options and extra
// JSON fields (`"maxParallel":2`).
func rolloutBody(unit string, triples []string, extra ...string) string {
	b, _ := json.Marshal(wireOptions(opts(triples...)))
	fields := append([]string{fmt.Sprintf(`"unit":%q`, unit), `"options":` + string(b)}, extra...)
	return "{" + strings.Join(fields, ",") + "}"
}

// putWith submits a unit with options and a desired state.
func (e *env) putWith(name string, triples []string, desired string) {
	e.t.Helper()
	b, _ := json.Marshal(wireOptions(opts(triples...)))
	body := fmt.Sprintf(`{"name":%q,"desiredState":%q,"options":%s}`, name, desired, b)
	e.putUnit(name, body)
}

func hashOf(triples []string) string { return unitfile.Hash(opts(triples...)) }

func decodeRollout(t *testing.T, body string) RolloutJSON {
	t.Helper()
	var r RolloutJSON
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return r
}

func (e *env) revisions(owner string) []int {
	e.t.Helper()
	revs, err := e.store.Revisions(e.ctx(), owner)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []int
	for _, r := range revs {
		out = append(out, r.Revision)
	}
	return out
}

func (e *env) noRollout(unit string) {
	e.t.Helper()
	if _, err := e.store.Rollout(e.ctx(), unit); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("rollout record of %s: %v", unit, err)
	}
}

func (e *env) hash(name string) string {
	e.t.Helper()
	u, ok := e.unit(name)
	if !ok {
		e.t.Fatalf("unit %s missing", name)
	}
	return u.Hash
}

func TestRolloutTemplateLifecycle(t *testing.T) {
	e := newEnv(t, 0)
	e.putWith("web@.service", webV1, "inactive")
	for _, n := range []string{"web@3.service", "web@1.service", "web@2.service"} {
		e.putWith(n, webV1, "launched")
	}
	e.putWith("web@4.service", webV1, "loaded")
	e.putWith("other@1.service", webV1, "launched")
	h1, h2 := hashOf(webV1), hashOf(webV2)
	if got := e.revisions("web@.service"); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("revisions after submit: %v", got)
	}

	got := e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("web@.service", webV2, `"maxParallel":2`, `"minHealthyTime":"1s"`))
	if got.code != 201 {
		t.Fatalf("POST rollout: %d %s", got.code, got.body)
	}
	r := decodeRollout(t, got.body)
	want := rollout.Spec{Unit: "web@.service", FromHash: h1, FromRevision: 1, ToHash: h2, ToRevision: 2,
		MaxParallel: 2, MinHealthyTime: time.Second, HealthyDeadline: 5 * time.Minute, User: "local"}
	if !reflect.DeepEqual(r.Spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", r.Spec, want)
	}
	var names []string
	for _, tg := range r.Targets {
		names = append(names, tg.Name)
		if tg.Status != rollout.TargetPending {
			t.Errorf("target %s: %s", tg.Name, tg.Status)
		}
	}
	if !reflect.DeepEqual(names, []string{"web@1.service", "web@2.service", "web@3.service"}) {
		t.Errorf("targets %v", names)
	}
	if r.Phase != rollout.PhaseRunning || r.Progress != "0/3 updated, starting next batch" {
		t.Errorf("phase %s progress %q", r.Phase, r.Progress)
	}
	// The template has the new file at once, the instances that run
	// nothing too (with their own desired state); launched ones wait for
	// the driver.
	if tu, _ := e.unit("web@.service"); tu.Hash != h2 || tu.DesiredState != fleet.JobStateInactive {
		t.Errorf("template %+v", tu)
	}
	if u4, _ := e.unit("web@4.service"); u4.Hash != h2 || u4.DesiredState != fleet.JobStateLoaded {
		t.Errorf("idle instance %+v", u4)
	}
	for _, n := range []string{"web@1.service", "other@1.service"} {
		if e.hash(n) != h1 {
			t.Errorf("%s changed", n)
		}
	}
	if got := e.revisions("web@.service"); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("revisions %v", got)
	}

	// GET one and all.
	one := e.do("GET", "/fleet/v1/rollouts/web@.service", "", "")
	if one.code != 200 || !reflect.DeepEqual(decodeRollout(t, one.body), r) {
		t.Errorf("GET rollout: %d %s", one.code, one.body)
	}
	all := e.do("GET", "/v1-alpha/rollouts", "", "")
	var list struct{ Rollouts []RolloutJSON }
	if err := json.Unmarshal([]byte(all.body), &list); all.code != 200 || err != nil || len(list.Rollouts) != 1 || list.Rollouts[0].Unit != "web@.service" {
		t.Errorf("GET rollouts: %d %s", all.code, all.body)
	}
	expectError(t, "GET none", e.do("GET", "/fleet/v1/rollouts/x.service", "", ""), 404, "no rollout of x.service")

	// A second rollout while this one runs: 409 naming it, nothing written.
	v3 := []string{"Service|ExecStart|/bin/web v3"}
	expectError(t, "second rollout", e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("web@.service", v3)), 409,
		"a rollout of web@.service is in progress: revision 2 ("+h2[:7]+"), running (0/3 updated, starting next batch); pause, abort or wait for it")
	if e.hash("web@.service") != h2 || !reflect.DeepEqual(e.revisions("web@.service"), []int{1, 2}) {
		t.Errorf("second rollout wrote something")
	}

	// Phase flips.
	action := func(a string) response { return e.do("POST", "/fleet/v1/rollouts/web@.service/"+a, "", "") }
	got = action("pause")
	if got.code != 200 || decodeRollout(t, got.body).Phase != rollout.PhasePaused ||
		decodeRollout(t, got.body).Progress != "paused: 0/3 updated" {
		t.Errorf("pause: %d %s", got.code, got.body)
	}
	expectError(t, "pause paused", action("pause"), 409, "rollout of web@.service is already paused")
	got = action("resume")
	if got.code != 200 || decodeRollout(t, got.body).Phase != rollout.PhaseRunning {
		t.Errorf("resume: %d %s", got.code, got.body)
	}
	expectError(t, "resume running", action("resume"), 409, "rollout of web@.service is not paused")
	got = action("abort")
	if ab := decodeRollout(t, got.body); got.code != 200 || ab.Phase != rollout.PhaseAborted || ab.Reason != "aborted by local" {
		t.Errorf("abort: %d %s", got.code, got.body)
	}
	expectError(t, "abort aborted", action("abort"), 409, "rollout of web@.service is aborted; nothing to abort")
	expectError(t, "pause none", e.do("POST", "/fleet/v1/rollouts/x.service/pause", "", ""), 404, "no rollout of x.service")
	if rec, _ := e.store.Rollout(e.ctx(), "web@.service"); rec.Rollout.Phase != rollout.PhaseAborted {
		t.Errorf("stored phase %s", rec.Rollout.Phase)
	}

	// The same file again: nothing to roll.
	expectError(t, "same file", e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("web@.service", webV2)), 409,
		"nothing to roll: web@.service is already at revision 2 ("+h2[:7]+")")

	// History: the template's and an instance's (shared, current = its own file).
	expect(t, "history", e.do("GET", "/fleet/v1/units/web@.service/history", "", ""), 200, historyJSON(t, e, "web@.service", h2))
	expect(t, "instance history", e.do("GET", "/fleet/v1/units/web@1.service/history", "", ""), 200, historyJSON(t, e, "web@.service", h1))
	expectError(t, "history none", e.do("GET", "/fleet/v1/units/nope.service/history", "", ""), 404,
		"unit nope.service does not exist and has no revisions")

	// Undo: to a revision that is not kept, then to the one before.
	expectError(t, "undo missing", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "application/json", `{"toRevision":7}`), 404,
		"web@.service has no revision 7 (kept: 1, 2)")
	expectError(t, "undo missing unit", e.do("POST", "/fleet/v1/rollouts/nope@.service/undo", "", ""), 404,
		"unit nope@.service does not exist")
	expectError(t, "undo maxParallel 0", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "application/json", `{"maxParallel":0}`), 400,
		"maxParallel must be at least 1")
	expectError(t, "undo unknown field", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "application/json", `{"revision":1}`), 400,
		`unable to decode body: json: unknown field "revision"`)
	if e.hash("web@.service") != h2 {
		t.Fatal("failed undo wrote the template")
	}
	got = e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "", "")
	if got.code != 201 {
		t.Fatalf("undo: %d %s", got.code, got.body)
	}
	u := decodeRollout(t, got.body)
	if !u.Undo || u.FromHash != h2 || u.FromRevision != 2 || u.ToHash != h1 || u.ToRevision != 3 || len(u.Targets) != 3 {
		t.Errorf("undo record %+v", u.Spec)
	}
	if e.hash("web@.service") != h1 || e.hash("web@4.service") != h1 {
		t.Errorf("undo did not put the template back")
	}
	// The old file is renumbered as the newest (as Kubernetes does).
	if got := e.revisions("web@.service"); !reflect.DeepEqual(got, []int{2, 3}) {
		t.Errorf("revisions after undo %v", got)
	}
}

// historyJSON is the expected history answer for owner's stored revisions.
func historyJSON(t *testing.T, e *env, owner, current string) string {
	t.Helper()
	revs, err := e.store.Revisions(e.ctx(), owner)
	if err != nil {
		t.Fatal(err)
	}
	out := struct {
		Revisions []RevisionJSON `json:"revisions"`
	}{Revisions: []RevisionJSON{}}
	for _, r := range revs {
		out.Revisions = append(out.Revisions, RevisionJSON{Revision: r.Revision, Hash: r.Hash, Time: r.Time, User: r.User, Current: r.Hash == current})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func TestRolloutPlainUnit(t *testing.T) {
	e := newEnv(t, 0)
	v1 := []string{"Service|ExecStart|/bin/a v1"}
	v2 := []string{"Service|ExecStart|/bin/a v2"}
	e.putWith("a.service", v1, "launched")
	got := e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("a.service", v2, `"autoRevert":true`, `"healthyDeadline":"1m"`))
	if got.code != 201 {
		t.Fatalf("POST: %d %s", got.code, got.body)
	}
	r := decodeRollout(t, got.body)
	if len(r.Targets) != 1 || r.Targets[0].Name != "a.service" || !r.AutoRevert || r.HealthyDeadline != time.Minute || r.Global {
		t.Errorf("record %+v", r)
	}
	// The driver rewrites a plain unit (its only target): not yet.
	if e.hash("a.service") != hashOf(v1) {
		t.Errorf("plain unit rewritten at start")
	}
	revs, _ := e.store.Revisions(e.ctx(), "a.service")
	if len(revs) != 2 || revs[1].Hash != hashOf(v2) || revs[1].User != "local" || revs[1].Revision != 2 {
		t.Errorf("revisions %+v", revs)
	}

	// Not launched: the file is updated, nothing rolled, 422.
	e.putWith("b.service", v1, "loaded")
	expectError(t, "not launched", e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("b.service", v2)), 422,
		"b.service updated to revision 2 ("+hashOf(v2)[:7]+"); nothing was rolled: it is not launched")
	if u, _ := e.unit("b.service"); u.Hash != hashOf(v2) || u.DesiredState != fleet.JobStateLoaded {
		t.Errorf("b after 422: %+v", u)
	}
	e.noRollout("b.service")
}

func TestRolloutTemplateWithoutLaunchedInstances(t *testing.T) {
	e := newEnv(t, 0)
	e.putWith("web@.service", webV1, "inactive")
	e.putWith("web@1.service", webV1, "loaded")
	h2 := hashOf(webV2)
	expectError(t, "none launched", e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("web@.service", webV2)), 422,
		"web@.service updated to revision 2 ("+h2[:7]+"); no instances were rolled: none is launched")
	if e.hash("web@.service") != h2 || e.hash("web@1.service") != h2 {
		t.Errorf("files not updated")
	}
	if u, _ := e.unit("web@1.service"); u.DesiredState != fleet.JobStateLoaded {
		t.Errorf("instance desired state %s", u.DesiredState)
	}
	e.noRollout("web@.service")
	if got := e.revisions("web@.service"); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("revisions %v", got)
	}
}

func TestRolloutGlobalUnit(t *testing.T) {
	e := newEnv(t, 0)
	v1 := []string{"Service|ExecStart|/bin/g v1", "X-Fleet|Global|true"}
	v2 := []string{"Service|ExecStart|/bin/g v2", "X-Fleet|Global|true"}
	e.putWith("g.service", v1, "launched")
	e.place("g.service", machineC, machineA)
	got := e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("g.service", v2))
	if got.code != 201 {
		t.Fatalf("POST: %d %s", got.code, got.body)
	}
	r := decodeRollout(t, got.body)
	if !r.Global || len(r.Targets) != 2 || r.Targets[0].Name != machineA || r.Targets[1].Name != machineC {
		t.Errorf("record %+v", r)
	}
	// The global unit's file changes at once; the record pins machines.
	if u, _ := e.unit("g.service"); u.Hash != hashOf(v2) || u.DesiredState != fleet.JobStateLaunched {
		t.Errorf("global unit %+v", u)
	}
	// A rollout cannot turn it into a plain unit.
	e.putWith("h.service", v1, "launched")
	expectError(t, "global flip", e.do("POST", "/fleet/v1/rollouts", "application/json",
		rolloutBody("h.service", []string{"Service|ExecStart|/bin/g v2"})), 400,
		"h.service: a rollout cannot change [X-Fleet] Global= (now true): replace the unit instead (fleetctl submit --replace, or destroy and start it)")
	// Launched but scheduled nowhere: 422.
	expectError(t, "global unplaced", e.do("POST", "/fleet/v1/rollouts", "application/json", rolloutBody("h.service", v2)), 422,
		"h.service updated to revision 2 ("+hashOf(v2)[:7]+"); no machines were rolled: it is not scheduled on any machine")
}

// Bad input is 4xx with a clear message, and nothing is written.
func TestRolloutBadInput(t *testing.T) {
	e := newEnv(t, 0)
	e.putWith("web@.service", webV1, "inactive")
	e.putWith("web@1.service", webV1, "launched")
	h1 := hashOf(webV1)
	post := func(body string) response { return e.do("POST", "/fleet/v1/rollouts", "application/json", body) }
	big := rolloutBody("web@.service", []string{"Service|ExecStart|/bin/" + strings.Repeat("x", MaxBodyBytes)})
	for _, tc := range []struct {
		name string
		got  response
		code int
		msg  string
	}{
		{"missing unit", post(rolloutBody("nope.service", webV2)), 404, "unit nope.service does not exist"},
		{"bad name", post(rolloutBody("nope", webV2)), 400, `unit name must contain "."`},
		{"no unit", post(`{"options":[]}`), 400, "unit is required"},
		{"no options", post(`{"unit":"web@.service"}`), 400, "options are required: the new file of web@.service"},
		{"invalid options", post(rolloutBody("web@.service", []string{"Service|ExecStart|/bin/x", "X-Fleet|Global|true", "X-Fleet|MachineID|abc"})), 400,
			"MachineID cannot be used with Global"},
		{"maxParallel 0", post(rolloutBody("web@.service", webV2, `"maxParallel":0`)), 400, "maxParallel must be at least 1"},
		{"maxParallel -1", post(rolloutBody("web@.service", webV2, `"maxParallel":-1`)), 400, "maxParallel must be at least 1"},
		{"bad minHealthyTime", post(rolloutBody("web@.service", webV2, `"minHealthyTime":"ten"`)), 400,
			`invalid minHealthyTime "ten": expect a duration such as 10s or 5m`},
		{"bad healthyDeadline", post(rolloutBody("web@.service", webV2, `"healthyDeadline":"5"`)), 400,
			`invalid healthyDeadline "5": expect a duration such as 10s or 5m`},
		{"deadline below min", post(rolloutBody("web@.service", webV2, `"healthyDeadline":"1s"`)), 400,
			"healthyDeadline (1s) must be at least minHealthyTime (10s)"},
		{"number duration", post(rolloutBody("web@.service", webV2, `"minHealthyTime":10`)), 400,
			"unable to decode body: json: cannot unmarshal number into Go struct field RolloutRequest.RolloutGates.minHealthyTime of type string"},
		{"unknown field", post(rolloutBody("web@.service", webV2, `"maxSurges":1`)), 400, `unable to decode body: json: unknown field "maxSurges"`},
		{"negative surge", post(rolloutBody("web@.service", webV2, `"maxSurge":-1`)), 400, `maxSurge must not be negative, got -1`},
		{"trailing data", post(rolloutBody("web@.service", webV2) + "{}"), 400, "unable to decode body: trailing data after the JSON object"},
		{"empty body", post(""), 400, "unable to decode body: EOF"},
		{"not JSON", e.do("POST", "/fleet/v1/rollouts", "text/plain", rolloutBody("web@.service", webV2)), 415, "only acceptable Content-Type is application/json"},
		{"too big", post(big), 413, fmt.Sprintf("request body too large: limit is %d bytes", MaxBodyBytes)},
		{"instance", post(rolloutBody("web@1.service", webV2)), 400,
			"web@1.service is an instance of web@.service: roll out the template (its instances share its revisions)"},
		{"same file", post(rolloutBody("web@.service", webV1)), 409, "nothing to roll: web@.service is already at revision 1 (" + h1[:7] + ")"},
		{"undo nothing before", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "", ""), 404,
			"web@.service has no revision before the current one (kept: 1)"},
		{"undo negative", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "application/json", `{"toRevision":-1}`), 400,
			"toRevision must not be negative (0: the revision before the current one)"},
		{"undo to current", e.do("POST", "/fleet/v1/rollouts/web@.service/undo", "application/json", `{"toRevision":1}`), 409,
			"nothing to roll: web@.service is already at revision 1 (" + h1[:7] + ")"},
	} {
		expectError(t, tc.name, tc.got, tc.code, tc.msg)
	}
	e.noRollout("web@.service")
	e.noRollout("web@1.service")
	if e.hash("web@.service") != h1 || e.hash("web@1.service") != h1 {
		t.Errorf("bad input changed a unit")
	}
	if got := e.revisions("web@.service"); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("bad input changed revisions: %v", got)
	}
	if _, ok := e.unit("nope.service"); ok {
		t.Errorf("nope.service created")
	}
	for _, c := range []struct{ method, path, msg string }{
		{"DELETE", "/fleet/v1/rollouts", "only GET and POST supported against this resource"},
		{"POST", "/fleet/v1/rollouts/web@.service", msgOnlyGet},
		{"GET", "/fleet/v1/rollouts/web@.service/pause", msgOnlyPost},
		{"GET", "/fleet/v1/rollouts/web@.service/undo", msgOnlyPost},
		{"POST", "/fleet/v1/units/web@.service/history", msgOnlyGet},
	} {
		expectError(t, c.method+" "+c.path, e.do(c.method, c.path, "application/json", "{}"), 405, c.msg)
	}
}

// PUT /units keeps a revision of every file a unit or template gets;
// instances share their template's.
func TestPutUnitRecordsRevisions(t *testing.T) {
	e := newEnv(t, 0)
	v1 := []string{"Service|ExecStart|/bin/a v1"}
	v2 := []string{"Service|ExecStart|/bin/a v2"}
	e.putWith("a.service", v1, "inactive")
	e.putWith("a.service", v1, "loaded") // same file: no revision
	e.putWith("a.service", v2, "inactive")
	if got := e.revisions("a.service"); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("revisions %v", got)
	}
	e.putWith("web@1.service", v1, "inactive")
	if got := e.revisions("web@.service"); len(got) != 0 {
		t.Errorf("instance recorded a revision: %v", got)
	}
	if got := e.revisions("web@1.service"); len(got) != 0 {
		t.Errorf("instance recorded a revision: %v", got)
	}
}

// Readers may look, only admins may start or change a rollout; the
// record names the caller.
func TestRolloutAuth(t *testing.T) {
	e := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, auth.Config{})})
	bearer := func(tok string) http.Header {
		h := contentTypeHeader("application/json")
		h.Set("Authorization", "Bearer "+tok)
		return h
	}
	put := doURL(t, e.srv.URL, "PUT", "/fleet/v1/units/a.service",
		`{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/a"}]}`, bearer(adminToken))
	if put.code != 201 {
		t.Fatalf("PUT: %d %s", put.code, put.body)
	}
	if revs, _ := e.store.Revisions(e.ctx(), "a.service"); len(revs) != 1 || revs[0].User != "admin" {
		t.Errorf("revision of the PUT: %+v", revs)
	}
	body := rolloutBody("a.service", []string{"Service|ExecStart|/bin/a v2"})
	ro := doURL(t, e.srv.URL, "POST", "/fleet/v1/rollouts", body, bearer(readonlyToken))
	expectError(t, "readonly POST", ro, 403, "permission denied: read-only credential cannot POST /fleet/v1/rollouts")
	e.noRollout("a.service")
	got := doURL(t, e.srv.URL, "POST", "/fleet/v1/rollouts", body, bearer(adminToken))
	if got.code != 201 || decodeRollout(t, got.body).User != "admin" {
		t.Fatalf("admin POST: %d %s", got.code, got.body)
	}
	if g := doURL(t, e.srv.URL, "GET", "/fleet/v1/rollouts/a.service", "", bearer(readonlyToken)); g.code != 200 {
		t.Errorf("readonly GET: %d %s", g.code, g.body)
	}
	if g := doURL(t, e.srv.URL, "GET", "/fleet/v1/units/a.service/history", "", bearer(readonlyToken)); g.code != 200 {
		t.Errorf("readonly history: %d %s", g.code, g.body)
	}
	expectError(t, "readonly abort", doURL(t, e.srv.URL, "POST", "/fleet/v1/rollouts/a.service/abort", "", bearer(readonlyToken)), 403,
		"permission denied: read-only credential cannot POST /fleet/v1/rollouts/a.service/abort")
	ab := doURL(t, e.srv.URL, "POST", "/fleet/v1/rollouts/a.service/abort", "", bearer(adminToken))
	if ab.code != 200 || decodeRollout(t, ab.body).Reason != "aborted by admin" {
		t.Errorf("admin abort: %d %s", ab.code, ab.body)
	}
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

const (
	testVersion = "9.9.9-test"
	machineA    = "aaaaaaaa11111111aaaaaaaa11111111"
	machineB    = "bbbbbbbb22222222bbbbbbbb22222222"
	machineC    = "cccccccc33333333cccccccc33333333"
)

// env is one fleetd API on a real store on a real embedded etcd.
type env struct {
	t     *testing.T
	store *store.Store
	api   *Server
	srv   *httptest.Server
	lead  *store.Leadership
}

func newEnv(t *testing.T, tokenLimit int) *env {
	t.Helper()
	return newEnvWith(t, Config{MachineID: machineA, TokenLimit: tokenLimit})
}

// newEnvWith completes cfg with a fresh store and the test version.
func newEnvWith(t *testing.T, cfg Config) *env {
	t.Helper()
	cli := etcdtest.New(t)
	st := store.New(etcdkv.New(cli), "/fleet-test/")
	e := &env{t: t, store: st}
	cfg.Store, cfg.Version = st, testVersion
	e.api = New(cfg)
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), 20*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// response is what a request got.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request to the test server; contentType "" sends none.
func (e *env) do(method, path, contentType, body string) response {
	e.t.Helper()
	return doURL(e.t, e.srv.URL, method, path, body, contentTypeHeader(contentType))
}

func contentTypeHeader(ct string) http.Header {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return h
}

func doURL(t *testing.T, base, method, path, body string, h http.Header) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func envelope(code int, msg string) string {
	b, _ := json.Marshal(msg)
	return fmt.Sprintf(`{"error":{"code":%d,"message":%s}}`, code, b)
}

// expect checks code and exact body.
func expect(t *testing.T, what string, got response, code int, body string) {
	t.Helper()
	if got.code != code || got.body != body {
		t.Errorf("%s: got %d %s\nwant %d %s", what, got.code, got.body, code, body)
	}
	if s := got.header.Get("Server"); s != "fleetd/"+testVersion {
		t.Errorf("%s: Server header %q", what, s)
	}
}

func expectError(t *testing.T, what string, got response, code int, msg string) {
	t.Helper()
	expect(t, what, got, code, envelope(code, msg))
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

const helloJSON = `{"name":"hello.service","options":[` +
	`{"section":"Unit","name":"Description","value":"Hello World"},` +
	`{"section":"Service","name":"ExecStart","value":"/bin/sh -c \"while true; do echo Hello; sleep 1; done\""}]}`

var helloOptionsWire = `[{"name":"Description","section":"Unit","value":"Hello World"},` +
	`{"name":"ExecStart","section":"Service","value":"/bin/sh -c \"while true; do echo Hello; sleep 1; done\""}]`

func unitBody(name string, opts ...string) string {
	// opts are section/name/value triples joined by "|".
	var parts []string
	for _, o := range opts {
		f := strings.SplitN(o, "|", 3)
		b, _ := json.Marshal(map[string]string{"section": f[0], "name": f[1], "value": f[2]})
		parts = append(parts, string(b))
	}
	return fmt.Sprintf(`{"name":%q,"options":[%s]}`, name, strings.Join(parts, ","))
}

func (e *env) putUnit(name, body string) {
	e.t.Helper()
	got := e.do("PUT", "/fleet/v1/units/"+name+"?alt=json", "application/json", body)
	if got.code != http.StatusCreated && got.code != http.StatusNoContent {
		e.t.Fatalf("PUT %s: %d %s", name, got.code, got.body)
	}
}

func (e *env) leader() *store.Leadership {
	e.t.Helper()
	if e.lead == nil {
		l, err := e.store.Campaign(e.ctx(), "leader", 30*time.Second)
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { l.Resign(context.Background()) })
		e.lead = l
	}
	return e.lead
}

// place schedules unit on machines (as the engine would).
func (e *env) place(unit string, machines ...string) {
	e.t.Helper()
	var c store.Changes
	for _, m := range machines {
		c.Put = append(c.Put, store.ScheduleEntry{Unit: unit, Machine: m, DesiredState: fleet.JobStateLaunched})
	}
	if err := e.store.Apply(e.ctx(), e.leader(), c); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) register(m fleet.Machine) *store.Presence {
	e.t.Helper()
	p, err := e.store.Register(e.ctx(), m, 30*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func (e *env) unit(name string) (fleet.Unit, bool) {
	e.t.Helper()
	u, err := e.store.Unit(e.ctx(), name)
	if err != nil {
		return u, false
	}
	return u, true
}

func TestRoutingAndHeaders(t *testing.T) {
	e := newEnv(t, 0)
	expectError(t, "GET /", e.do("GET", "/", "", ""), 405, "")
	expectError(t, "POST /", e.do("POST", "/", "", ""), 405, "")
	expectError(t, "GET /fleet/v1", e.do("GET", "/fleet/v1", "", ""), 405, "")
	expectError(t, "GET /v1-alpha", e.do("GET", "/v1-alpha", "", ""), 405, "")
	expectError(t, "unknown", e.do("GET", "/nope", "", ""), 404, "")
	expectError(t, "unknown under prefix", e.do("GET", "/fleet/v1/nope", "", ""), 404, "")
	expectError(t, "unknown deep", e.do("GET", "/fleet/v1/units/a/b", "", ""), 404, "")

	for _, c := range []struct{ method, path, msg string }{
		{"POST", "/fleet/v1/units", msgOnlyGet},
		{"DELETE", "/fleet/v1/units", msgOnlyGet},
		{"POST", "/fleet/v1/units/x.service", msgOnlyGetPutDel},
		{"PATCH", "/fleet/v1/units/x.service", msgOnlyGetPutDel},
		{"POST", "/fleet/v1/machines", msgOnlyGetPatch},
		{"PUT", "/fleet/v1/machines", msgOnlyGetPatch},
		{"POST", "/fleet/v1/state", msgOnlyGet},
		{"DELETE", "/fleet/v1/state/x.service", msgOnlyGet},
		{"POST", "/v1-alpha/units", msgOnlyGet},
		{"POST", "/fleet/v1/reasons", msgOnlyGet},
		{"DELETE", "/fleet/v1/status/x.service", msgOnlyGet},
		{"PUT", "/fleet/v1/journal/x.service", msgOnlyGet},
		{"POST", "/fleet/v1/local/status/x.service", msgOnlyGet},
		{"POST", "/fleet/v1/local/journal/x.service", msgOnlyGet},
	} {
		expectError(t, c.method+" "+c.path, e.do(c.method, c.path, "application/json", "{}"), 405, c.msg)
	}

	// Discovery: GET only, anything else is fleet's 400.
	got := e.do("GET", "/fleet/v1/discovery?alt=json", "", "")
	if got.code != 200 || got.header.Get("Server") != "fleetd/"+testVersion {
		t.Fatalf("discovery: %d %v", got.code, got.header)
	}
	checkDiscovery(t, got.body)
	expectError(t, "POST discovery", e.do("POST", "/fleet/v1/discovery", "", ""), 400, msgOnlyGet)
	if got := e.do("GET", "/v1-alpha/discovery", "", ""); got.code != 200 {
		t.Errorf("v1-alpha discovery: %d", got.code)
	}
}

func TestEmptyCollections(t *testing.T) {
	e := newEnv(t, 0)
	for _, p := range []string{"/fleet/v1/units", "/fleet/v1/state", "/fleet/v1/machines", "/fleet/v1/reasons",
		"/v1-alpha/units?alt=json", "/fleet/v1/machines?alt=json"} {
		got := e.do("GET", p, "", "")
		expect(t, p, got, 200, `{}`)
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
	}
}

func TestUnitLifecycle(t *testing.T) {
	e := newEnv(t, 0)
	expectError(t, "GET missing", e.do("GET", "/fleet/v1/units/hello.service?alt=json", "", ""), 404, msgUnitNotFound)
	expectError(t, "DELETE missing", e.do("DELETE", "/fleet/v1/units/hello.service", "", ""), 404, msgUnitNotFound)

	got := e.do("PUT", "/fleet/v1/units/hello.service?alt=json", "application/json", helloJSON)
	expect(t, "create", got, 201, "")
	want := `{"currentState":"inactive","desiredState":"inactive","name":"hello.service","options":` + helloOptionsWire + `}`
	expect(t, "GET created", e.do("GET", "/fleet/v1/units/hello.service?alt=json", "", ""), 200, want)
	u, _ := e.unit("hello.service")
	if u.Hash != unitfile.Hash(u.Options) || len(u.Hash) != 40 {
		t.Errorf("stored hash %q", u.Hash)
	}

	// Same unit again, no desired state: 409; with desired state: 204.
	expectError(t, "resubmit", e.do("PUT", "/fleet/v1/units/hello.service", "application/json", helloJSON),
		409, "must provide DesiredState to update existing unit")
	expect(t, "load", e.do("PUT", "/fleet/v1/units/hello.service?alt=json", "application/json",
		`{"name":"hello.service","desiredState":"loaded"}`), 204, "")
	expect(t, "launch (name from URL)", e.do("PUT", "/fleet/v1/units/hello.service", "application/json",
		`{"desiredState":"launched"}`), 204, "")
	want = `{"currentState":"inactive","desiredState":"launched","name":"hello.service","options":` + helloOptionsWire + `}`
	expect(t, "GET launched", e.do("GET", "/v1-alpha/units/hello.service", "", ""), 200, want)
	expect(t, "list", e.do("GET", "/fleet/v1/units?alt=json", "", ""), 200, `{"units":[`+want+`]}`)

	// Same options with a desired state: 204 (no replacement).
	body := strings.TrimSuffix(helloJSON, "}") + `,"desiredState":"loaded"}`
	expect(t, "same options + state", e.do("PUT", "/fleet/v1/units/hello.service", "application/json", body), 204, "")
	if u, _ := e.unit("hello.service"); u.DesiredState != fleet.JobStateLoaded {
		t.Errorf("desired state %q", u.DesiredState)
	}

	// Different options: replaced (201), desired state back to inactive.
	expect(t, "replace", e.do("PUT", "/fleet/v1/units/hello.service", "application/json",
		unitBody("hello.service", "Service|ExecStart|/bin/true")), 201, "")
	u2, _ := e.unit("hello.service")
	if u2.DesiredState != fleet.JobStateInactive || u2.Hash == u.Hash || len(u2.Options) != 1 {
		t.Errorf("after replace: %+v", u2)
	}
	// Replace with a desired state keeps it.
	expect(t, "replace launched", e.do("PUT", "/fleet/v1/units/hello.service", "application/json",
		`{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/false"}]}`), 201, "")
	if u3, _ := e.unit("hello.service"); u3.DesiredState != fleet.JobStateLaunched {
		t.Errorf("after replace launched: %+v", u3)
	}

	expect(t, "DELETE", e.do("DELETE", "/fleet/v1/units/hello.service?alt=json", "", ""), 204, "")
	expectError(t, "GET deleted", e.do("GET", "/fleet/v1/units/hello.service", "", ""), 404, msgUnitNotFound)
	expect(t, "list after delete", e.do("GET", "/fleet/v1/units", "", ""), 200, `{}`)

	// Create with a desired state.
	expect(t, "create launched", e.do("PUT", "/fleet/v1/units/a.service", "application/json",
		`{"name":"a.service","desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`), 201, "")
	if u, _ := e.unit("a.service"); u.DesiredState != fleet.JobStateLaunched {
		t.Errorf("created with %q", u.DesiredState)
	}
	// Empty values are omitted on the wire, like every empty field.
	expect(t, "create empty value", e.do("PUT", "/fleet/v1/units/b.service", "application/json",
		`{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"Service","name":"Environment","value":""}]}`), 201, "")
	expect(t, "GET empty value", e.do("GET", "/fleet/v1/units/b.service", "", ""), 200,
		`{"currentState":"inactive","desiredState":"inactive","name":"b.service","options":[{"name":"ExecStart","section":"Service","value":"/bin/true"},{"name":"Environment","section":"Service"}]}`)
}

func TestCurrentStateAndMachineID(t *testing.T) {
	e := newEnv(t, 0)
	pa := e.register(fleet.Machine{ID: machineA, PublicIP: "10.0.0.1"})
	e.register(fleet.Machine{ID: machineB, PublicIP: "10.0.0.2"})
	opt := "Service|ExecStart|/bin/true"
	e.putUnit("placed.service", unitBody("placed.service", opt))
	e.putUnit("loaded.service", unitBody("loaded.service", opt))
	e.putUnit("launched.service", unitBody("launched.service", opt))
	e.putUnit("global.service", unitBody("global.service", opt, "X-Fleet|Global|true"))
	e.putUnit("unplaced.service", unitBody("unplaced.service", opt))
	e.place("placed.service", machineA)
	e.place("loaded.service", machineA)
	e.place("launched.service", machineA)
	e.place("global.service", machineA, machineB)
	err := e.store.PutUnitStates(e.ctx(), pa.Lease(), []fleet.UnitState{
		{Name: "loaded.service", MachineID: machineA, LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
		{Name: "launched.service", MachineID: machineA, LoadState: "loaded", ActiveState: "active", SubState: "running", JobState: fleet.JobStateLaunched},
		{Name: "global.service", MachineID: machineA, LoadState: "loaded", ActiveState: "active", SubState: "running", JobState: fleet.JobStateLaunched},
		// A state from a machine the unit is not placed on does not count.
		{Name: "unplaced.service", MachineID: machineA, LoadState: "loaded", ActiveState: "active", SubState: "running", JobState: fleet.JobStateLaunched},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := `[{"name":"ExecStart","section":"Service","value":"/bin/true"}]`
	want := map[string]string{
		"placed.service":   `{"currentState":"inactive","desiredState":"inactive","machineID":"` + machineA + `","name":"placed.service","options":` + opts + `}`,
		"loaded.service":   `{"currentState":"loaded","desiredState":"inactive","machineID":"` + machineA + `","name":"loaded.service","options":` + opts + `}`,
		"launched.service": `{"currentState":"launched","desiredState":"inactive","machineID":"` + machineA + `","name":"launched.service","options":` + opts + `}`,
		"global.service":   `{"currentState":"inactive","desiredState":"inactive","name":"global.service","options":[{"name":"ExecStart","section":"Service","value":"/bin/true"},{"name":"Global","section":"X-Fleet","value":"true"}]}`,
		"unplaced.service": `{"currentState":"inactive","desiredState":"inactive","name":"unplaced.service","options":` + opts + `}`,
	}
	for name, w := range want {
		expect(t, "GET "+name, e.do("GET", "/fleet/v1/units/"+name, "", ""), 200, w)
	}
	list := `{"units":[` + strings.Join([]string{want["global.service"], want["launched.service"], want["loaded.service"],
		want["placed.service"], want["unplaced.service"]}, ",") + `]}`
	expect(t, "list", e.do("GET", "/fleet/v1/units", "", ""), 200, list)
}

func TestPutUnitErrors(t *testing.T) {
	e := newEnv(t, 0)
	e.putUnit("exists.service", unitBody("exists.service", "Service|ExecStart|/bin/true"))
	e.putUnit("tmpl@.service", unitBody("tmpl@.service", "Service|ExecStart|/bin/echo %i"))
	before := e.do("GET", "/fleet/v1/units", "", "").body

	okBody := unitBody("new.service", "Service|ExecStart|/bin/true")
	nameErr := func(name string) string {
		err := unitfile.ValidateName(name)
		if err == nil {
			t.Fatalf("%q is a valid name", name)
		}
		return err.Error()
	}
	big := `{"name":"new.service","options":[{"section":"Service","name":"ExecStart","value":"` + strings.Repeat("x", MaxBodyBytes) + `"}]}`
	cases := []struct {
		name, path string
		header     http.Header
		body       string
		code       int
		msg        string // "" with prefix: compare prefix
		prefix     bool
	}{
		{"no content type", "new.service", http.Header{}, okBody, 415, "expected 1 Content-Type, got 0", false},
		{"two content types", "new.service", http.Header{"Content-Type": {"application/json", "application/json"}}, okBody, 415, "expected 1 Content-Type, got 2", false},
		{"text/plain", "new.service", contentTypeHeader("text/plain"), okBody, 415, "only acceptable Content-Type is application/json", false},
		{"form", "new.service", contentTypeHeader("application/x-www-form-urlencoded"), okBody, 415, "only acceptable Content-Type is application/json", false},
		{"bad media type", "new.service", contentTypeHeader("application/json; ===="), okBody, 415, "only acceptable Content-Type is application/json", false},
		{"bad json", "new.service", contentTypeHeader("application/json"), `{"name":`, 400, "unable to decode body: ", true},
		{"empty body", "new.service", contentTypeHeader("application/json"), ``, 400, "unable to decode body: EOF", false},
		{"wrong type", "new.service", contentTypeHeader("application/json"), `{"options":"x"}`, 400, "unable to decode body: json: cannot unmarshal", true},
		{"too large", "new.service", contentTypeHeader("application/json"), big, 413, fmt.Sprintf("request body too large: limit is %d bytes", MaxBodyBytes), false},
		{"name mismatch", "new.service", contentTypeHeader("application/json"), unitBody("other.service", "Service|ExecStart|/bin/true"), 400,
			`name in URL "new.service" differs from unit name in request body "other.service"`, false},
		{"bad name", "foo", contentTypeHeader("application/json"), `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`, 400, nameErr("foo"), false},
		{"bad type", "foo.mount2", contentTypeHeader("application/json"), `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`, 400, nameErr("foo.mount2"), false},
		{"bad char", "f$o.service", contentTypeHeader("application/json"), `{"desiredState":"launched"}`, 400, nameErr("f$o.service"), false},
		{"absent without options", "new.service", contentTypeHeader("application/json"), `{"desiredState":"launched"}`, 409, "unit does not exist and options field empty", false},
		{"bogus state on create", "new.service", contentTypeHeader("application/json"),
			`{"desiredState":"bogus","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`, 400, invalidDesiredState("bogus"), false},
		{"bogus state on existing", "exists.service", contentTypeHeader("application/json"), `{"desiredState":"bogus"}`, 400,
			`invalid desiredState "bogus": expect inactive, loaded or launched`, false},
		{"upper-case state", "exists.service", contentTypeHeader("application/json"), `{"desiredState":"Launched"}`, 400, invalidDesiredState("Launched"), false},
		{"existing without state", "exists.service", contentTypeHeader("application/json"), `{}`, 409, "must provide DesiredState to update existing unit", false},
		{"activate template", "tmpl@.service", contentTypeHeader("application/json"), `{"desiredState":"launched"}`, 400, `cannot activate template "tmpl@.service"`, false},
		{"load template", "tmpl@.service", contentTypeHeader("application/json"), `{"desiredState":"loaded"}`, 400, `cannot activate template "tmpl@.service"`, false},
		{"create active template", "t2@.service", contentTypeHeader("application/json"),
			`{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`, 400, `cannot activate template "t2@.service"`, false},
		{"invalid options", "new.service", contentTypeHeader("application/json"),
			unitBody("new.service", "Service|ExecStart|/bin/true", "X-Fleet|MachineID|abc", "X-Fleet|Global|true"), 400, "", true},
		{"invalid options on replace", "exists.service", contentTypeHeader("application/json"),
			unitBody("exists.service", "Service|ExecStart|/bin/true", "X-Fleet|MachineID|abc", "X-Fleet|MachineOf|x.service"), 400, "", true},
	}
	for _, c := range cases {
		got := doURL(t, e.srv.URL, "PUT", "/fleet/v1/units/"+c.path+"?alt=json", c.body, c.header)
		if c.prefix {
			var env errorBody
			if got.code != c.code || json.Unmarshal([]byte(got.body), &env) != nil ||
				env.Error.Code != c.code || !strings.HasPrefix(env.Error.Message, c.msg) || env.Error.Message == "" {
				t.Errorf("%s: got %d %s, want %d %q...", c.name, got.code, got.body, c.code, c.msg)
			}
		} else {
			expectError(t, c.name, got, c.code, c.msg)
		}
	}
	// Nothing was stored by any of them.
	if after := e.do("GET", "/fleet/v1/units", "", "").body; after != before {
		t.Errorf("units changed by failed PUTs:\nbefore %s\nafter  %s", before, after)
	}
	// A template may be set inactive; Content-Type parameters are fine.
	got := doURL(t, e.srv.URL, "PUT", "/fleet/v1/units/tmpl@.service", `{"desiredState":"inactive","unknownField":1}`,
		contentTypeHeader("application/json; charset=utf-8"))
	expect(t, "template inactive", got, 204, "")
}

func TestPaging(t *testing.T) {
	e := newEnv(t, 2)
	expect(t, "empty", e.do("GET", "/fleet/v1/units", "", ""), 200, `{}`)
	for _, n := range []string{"a", "b", "c", "d"} {
		e.putUnit(n+".service", unitBody(n+".service", "Service|ExecStart|/bin/true"))
	}
	unit := func(n string) string {
		return `{"currentState":"inactive","desiredState":"inactive","name":"` + n +
			`.service","options":[{"name":"ExecStart","section":"Service","value":"/bin/true"}]}`
	}
	// Exact multiple: 2, 2, then an empty page.
	expect(t, "p1", e.do("GET", "/fleet/v1/units?alt=json", "", ""), 200,
		`{"nextPageToken":"AgACAA==","units":[`+unit("a")+","+unit("b")+`]}`)
	expect(t, "p2", e.do("GET", "/fleet/v1/units?alt=json&nextPageToken=AgACAA==", "", ""), 200,
		`{"nextPageToken":"AgADAA==","units":[`+unit("c")+","+unit("d")+`]}`)
	expect(t, "p3", e.do("GET", "/fleet/v1/units?nextPageToken=AgADAA%3D%3D", "", ""), 200, `{}`)
	// Five: 2, 2, 1.
	e.putUnit("e.service", unitBody("e.service", "Service|ExecStart|/bin/true"))
	expect(t, "p3 of 5", e.do("GET", "/fleet/v1/units?nextPageToken=AgADAA==", "", ""), 200, `{"units":[`+unit("e")+`]}`)
	// Beyond the end.
	expect(t, "p9", e.do("GET", "/fleet/v1/units?nextPageToken="+pageToken{Limit: 2, Page: 9}.encode(), "", ""), 200, `{}`)

	for _, path := range []string{"/fleet/v1/units", "/fleet/v1/state", "/fleet/v1/machines"} {
		for _, c := range []struct{ q, msg string }{
			{"nextPageToken=ZAACAA==", "token limit must be 2"},
			{"nextPageToken=AgAAAA==", "token page must be greater than zero"},
			{"nextPageToken=AgACAA==&nextPageToken=AgACAA==", "too many values for page token"},
			{"nextPageToken=abcde", "illegal base64 data at input byte 4"},
			{"nextPageToken=AgA%2B", "illegal base64 data at input byte 3"},
			{"nextPageToken=AgA=", "unexpected EOF"},
			{"nextPageToken=", "EOF"},
		} {
			expectError(t, path+"?"+c.q, e.do("GET", path+"?"+c.q, "", ""), 400, c.msg)
		}
	}
	if got := (pageToken{Limit: 100, Page: 2}).encode(); got != "ZAACAA==" {
		t.Errorf("token limit 100 page 2 = %q", got)
	}
}

func TestPagingMachinesAndStates(t *testing.T) {
	e := newEnv(t, 2)
	var pres []*store.Presence
	for _, id := range []string{machineA, machineB, machineC} {
		pres = append(pres, e.register(fleet.Machine{ID: id}))
	}
	expect(t, "machines p1", e.do("GET", "/fleet/v1/machines", "", ""), 200,
		`{"machines":[{"id":"`+machineA+`"},{"id":"`+machineB+`"}],"nextPageToken":"AgACAA=="}`)
	expect(t, "machines p2", e.do("GET", "/fleet/v1/machines?nextPageToken=AgACAA==", "", ""), 200,
		`{"machines":[{"id":"`+machineC+`"}]}`)

	var states []fleet.UnitState
	for _, u := range []string{"x.service", "y.service"} {
		states = append(states, fleet.UnitState{Name: u, MachineID: machineA, LoadState: "loaded", ActiveState: "active", SubState: "running", Hash: "h"})
	}
	if err := e.store.PutUnitStates(e.ctx(), pres[0].Lease(), states); err != nil {
		t.Fatal(err)
	}
	st := func(u, m string) string {
		return `{"hash":"h","machineID":"` + m + `","name":"` + u + `","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}`
	}
	expect(t, "states p1", e.do("GET", "/fleet/v1/state", "", ""), 200,
		`{"nextPageToken":"AgACAA==","states":[`+st("x.service", machineA)+","+st("y.service", machineA)+`]}`)
	expect(t, "states p2", e.do("GET", "/fleet/v1/state?nextPageToken=AgACAA==", "", ""), 200, `{}`)
}

func TestStates(t *testing.T) {
	e := newEnv(t, 0)
	pa := e.register(fleet.Machine{ID: machineA})
	pb := e.register(fleet.Machine{ID: machineB})
	mk := func(u, m, sub string) fleet.UnitState {
		return fleet.UnitState{Name: u, MachineID: m, Hash: "abc", LoadState: "loaded", ActiveState: "active", SubState: sub}
	}
	if err := e.store.PutUnitStates(e.ctx(), pb.Lease(), []fleet.UnitState{mk("g.service", machineB, "running"), mk("h.service", machineB, "exited")}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutUnitStates(e.ctx(), pa.Lease(), []fleet.UnitState{mk("g.service", machineA, "start")}); err != nil {
		t.Fatal(err)
	}
	st := func(u, m, sub string) string {
		return `{"hash":"abc","machineID":"` + m + `","name":"` + u + `","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"` + sub + `"}`
	}
	all := `{"states":[` + st("g.service", machineA, "start") + "," + st("g.service", machineB, "running") + "," + st("h.service", machineB, "exited") + `]}`
	expect(t, "all", e.do("GET", "/fleet/v1/state?alt=json", "", ""), 200, all)
	expect(t, "by machine", e.do("GET", "/fleet/v1/state?machineID="+machineB, "", ""), 200,
		`{"states":[`+st("g.service", machineB, "running")+","+st("h.service", machineB, "exited")+`]}`)
	expect(t, "by unit", e.do("GET", "/fleet/v1/state?unitName=g.service", "", ""), 200,
		`{"states":[`+st("g.service", machineA, "start")+","+st("g.service", machineB, "running")+`]}`)
	expect(t, "both", e.do("GET", "/fleet/v1/state?unitName=g.service&machineID="+machineB, "", ""), 200,
		`{"states":[`+st("g.service", machineB, "running")+`]}`)
	expect(t, "short id is not a match", e.do("GET", "/fleet/v1/state?machineID=bbbbbbbb", "", ""), 200, `{}`)
	expect(t, "one", e.do("GET", "/fleet/v1/state/g.service?alt=json", "", ""), 200, st("g.service", machineA, "start"))
	expect(t, "one v1-alpha", e.do("GET", "/v1-alpha/state/h.service", "", ""), 200, st("h.service", machineB, "exited"))
	expectError(t, "missing", e.do("GET", "/fleet/v1/state/nope.service", "", ""), 404, msgStateNotFound)
}

func TestMachines(t *testing.T) {
	e := newEnv(t, 0)
	e.register(fleet.Machine{ID: machineB, PublicIP: "10.0.0.2", Metadata: map[string]string{"region": "us-east-1", "disk": "ssd"}})
	e.register(fleet.Machine{ID: machineA, PublicIP: "10.0.0.1"})
	expect(t, "list", e.do("GET", "/fleet/v1/machines?alt=json", "", ""), 200,
		`{"machines":[{"id":"`+machineA+`","primaryIP":"10.0.0.1"},{"id":"`+machineB+`","metadata":{"disk":"ssd","region":"us-east-1"},"primaryIP":"10.0.0.2"}]}`)

	okOp := `{"op":"add","path":"/` + machineA + `/metadata/rack","value":{"value":"r1"}}`
	for _, c := range []struct{ name, body, msg string }{
		{"bad op", `[` + okOp + `,{"op":"move","path":"/x/metadata/k","value":{"value":"v"}}]`, "invalid op: expect add, remove, or replace"},
		{"bad path", `[` + okOp + `,{"op":"add","path":"/x/meta/k","value":{"value":"v"}}]`, "machine metadata path invalid"},
		{"bad key", `[{"op":"remove","path":"/x/metadata/a b"}]`, "machine metadata path invalid"},
		{"no machine", `[{"op":"remove","path":"//metadata/k"}]`, "machine metadata path invalid"},
		{"add without value", `[` + okOp + `,{"op":"add","path":"/x/metadata/k"}]`, "invalid value: add and replace require a value"},
		{"replace empty value", `[` + okOp + `,{"op":"replace","path":"/x/metadata/k","value":{"value":""}}]`, "invalid value: add and replace require a value"},
	} {
		expectError(t, c.name, e.do("PATCH", "/fleet/v1/machines", "application/json", c.body), 400, c.msg)
	}
	got := e.do("PATCH", "/fleet/v1/machines", "application/json", `[{"op":"add","path":"/x/metadata/k","value":"v"}]`)
	var env errorBody
	if got.code != 400 || json.Unmarshal([]byte(got.body), &env) != nil ||
		!strings.HasPrefix(env.Error.Message, "json: cannot unmarshal string into Go struct field") {
		t.Errorf("plain string value: %d %s", got.code, got.body)
	}
	got = e.do("PATCH", "/fleet/v1/machines", "application/json", `[{"op":`)
	if got.code != 400 {
		t.Errorf("bad json: %d %s", got.code, got.body)
	}
	// Nothing was applied by the failed patches (okOp came first in each).
	expect(t, "unchanged", e.do("GET", "/fleet/v1/machines", "", ""), 200,
		`{"machines":[{"id":"`+machineA+`","primaryIP":"10.0.0.1"},{"id":"`+machineB+`","metadata":{"disk":"ssd","region":"us-east-1"},"primaryIP":"10.0.0.2"}]}`)

	patch := `[` + okOp + `,
	  {"op":"replace","path":"/` + machineB + `/metadata/region","value":{"value":"eu-west-1"}},
	  {"op":"remove","path":"/` + machineB + `/metadata/disk"},
	  {"op":"add","path":"/` + machineC + `/metadata/future","value":{"value":"yes"}},
	  {"op":"add","path":"/` + machineA + `/metadata/zone","value":{"value":"z1"}},
	  {"op":"remove","path":"/` + machineA + `/metadata/zone"}]`
	got = e.do("PATCH", "/fleet/v1/machines?alt=json", "application/json", patch)
	expect(t, "patch", got, 204, "")
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("patch Content-Type %q", ct)
	}
	expect(t, "patched", e.do("GET", "/fleet/v1/machines", "", ""), 200,
		`{"machines":[{"id":"`+machineA+`","metadata":{"rack":"r1"},"primaryIP":"10.0.0.1"},{"id":"`+machineB+`","metadata":{"region":"eu-west-1"},"primaryIP":"10.0.0.2"}]}`)
	// The metadata of a machine not yet registered shows when it joins.
	e.register(fleet.Machine{ID: machineC})
	expect(t, "machine C", e.do("GET", "/fleet/v1/machines?nextPageToken="+pageToken{Limit: 100, Page: 1}.encode(), "", ""), 200,
		`{"machines":[{"id":"`+machineA+`","metadata":{"rack":"r1"},"primaryIP":"10.0.0.1"},{"id":"`+machineB+`","metadata":{"region":"eu-west-1"},"primaryIP":"10.0.0.2"},{"id":"`+machineC+`","metadata":{"future":"yes"}}]}`)
	expect(t, "empty patch", e.do("PATCH", "/fleet/v1/machines", "application/json", `[]`), 204, "")
}

func TestReasons(t *testing.T) {
	e := newEnv(t, 0)
	expectError(t, "none", e.do("GET", "/fleet/v1/reasons/x.service", "", ""), 404, msgNoProblem)
	err := e.store.Apply(e.ctx(), e.leader(), store.Changes{PutReasons: []fleet.Reason{
		{Unit: "web@4.service", Summary: "no machine can run web@4.service: conflicts with web@1.service on aaaaaaaa",
			PerMachine: map[string]string{machineA: "conflicts with web@1.service"}},
		{Unit: "db.service", Summary: "no machine matches MachineMetadata region=mars"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	db := `{"unit":"db.service","summary":"no machine matches MachineMetadata region=mars"}`
	web := `{"unit":"web@4.service","summary":"no machine can run web@4.service: conflicts with web@1.service on aaaaaaaa","perMachine":{"` + machineA + `":"conflicts with web@1.service"}}`
	expect(t, "list", e.do("GET", "/fleet/v1/reasons", "", ""), 200, `{"reasons":[`+db+","+web+`]}`)
	expect(t, "one", e.do("GET", "/v1-alpha/reasons/web@4.service", "", ""), 200, web)
	expectError(t, "other", e.do("GET", "/fleet/v1/reasons/x.service", "", ""), 404, msgNoProblem)
}

func TestEtcdUnavailable(t *testing.T) {
	cli := etcdtest.NewClient(t, []string{"http://127.0.0.1:1"})
	st := store.New(etcdkv.New(cli), "/fleet-test/", store.WithRequestTimeout(200*time.Millisecond))
	srv := httptest.NewServer(New(Config{Store: st, Version: testVersion}).Handler())
	defer srv.Close()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/fleet/v1/units", ""},
		{"GET", "/fleet/v1/units/x.service", ""},
		{"PUT", "/fleet/v1/units/x.service", `{"desiredState":"launched"}`},
		{"GET", "/fleet/v1/machines", ""},
		{"GET", "/fleet/v1/state", ""},
	} {
		got := doURL(t, srv.URL, c.method, c.path, c.body, contentTypeHeader("application/json"))
		expectError(t, c.method+" "+c.path, got, 503, msgEtcdUnavailable)
	}
}

func TestStoreErrorClassification(t *testing.T) {
	if !isUnavailable(fmt.Errorf("store: x: %w", context.DeadlineExceeded)) {
		t.Error("deadline")
	}
	if isUnavailable(fmt.Errorf("store: x: decode: bad")) {
		t.Error("decode error is not unavailability")
	}
}

// FuzzPutUnit throws arbitrary bodies and content types at PUT: never a
// 5xx, never a panic.
func FuzzPutUnit(f *testing.F) {
	cli := etcdtest.New(f)
	st := store.New(etcdkv.New(cli), "/fleet-fuzz/")
	h := New(Config{Store: st, MachineID: machineA, Version: testVersion, TokenLimit: 2}).Handler()
	seed := []struct{ ct, body string }{
		{"application/json", helloJSON},
		{"application/json", `{"desiredState":"launched"}`},
		{"application/json", `{"desiredState":"bogus"}`},
		{"application/json", `{"name":"x.service","options":[null,{"section":"X-Fleet","name":"Global","value":"true"}]}`},
		{"application/json", `{"options":[{"section":"X-Fleet","name":"MachineOf","value":"%p.socket"},{"section":"X-Fleet","name":"Conflicts","value":"x.*"}]}`},
		{"application/json; charset=utf-8", `{"options":[{"section":"Unit","name":"A\nB","value":" v "}]}`},
		{"text/plain", `{}`},
		{"", ``},
		{"application/json", `[]`},
		{"application/json", `null`},
		{"application/json", `{"options":[{"section":"[","name":"=","value":"\\"}],"desiredState":"loaded"}`},
		{"application/json", "{\"options\":[{\"section\":\"S\",\"name\":\"N\",\"value\":\"\xff\xfe\"}]}"},
	}
	for _, s := range seed {
		f.Add(s.ct, s.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest("PUT", "/fleet/v1/units/x.service?alt=json", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("PUT %q %q: %d %s", ct, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var env errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code != rec.Code {
				t.Fatalf("bad envelope: %d %s", rec.Code, rec.Body.String())
			}
		}
		// Whatever was stored can be read back.
		get := httptest.NewRecorder()
		h.ServeHTTP(get, httptest.NewRequest("GET", "/fleet/v1/units/x.service", nil))
		if get.Code != 200 && get.Code != 404 {
			t.Fatalf("GET after PUT %q %q: %d %s", ct, body, get.Code, get.Body.String())
		}
	})
}

package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/fleet"
)

const (
	adminToken    = "admin-token-0123456789abcdef"
	readonlyToken = "readonly-token-0123456789abcdef"
)

func testPolicy(t *testing.T, trustLocal bool) *auth.Policy {
	t.Helper()
	toks, err := auth.ParseTokens("tokens", []byte("admin "+adminToken+"\n"+readonlyToken+" readonly\n"))
	if err != nil {
		t.Fatal(err)
	}
	return auth.New(auth.Config{Tokens: toks, TrustLocal: trustLocal})
}

// The middleware, request by request: the caller's address and credential
// against every kind of method, with nothing stored after a refusal.
func TestAuthMiddleware(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	e := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, true), Mount: map[string]http.Handler{"/ui/": ui}})
	h := e.api.Handler()
	const remote, loopback, unix = "192.0.2.7:41000", "127.0.0.1:41000", "@"
	bearer := func(tok string) string { return "Bearer " + tok }
	basic := func(tok string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+tok)) }
	unit := func(name string) (string, string) {
		return "/fleet/v1/units/" + name, unitBody(name, "Service|ExecStart|/bin/true")
	}
	readonlyMsg := func(method, path string) string {
		return envelope(403, "permission denied: read-only credential cannot "+method+" "+path)
	}
	p1, b1 := unit("r1.service")
	p2, b2 := unit("r2.service")
	p3, b3 := unit("a1.service")
	p4, b4 := unit("l1.service")
	p5, b5 := unit("u1.service")
	for _, tc := range []struct {
		name, remote, authz, method, path, body string
		code                                    int
		want                                    string // exact body, "" = not checked
	}{
		{"remote GET without credential", remote, "", "GET", "/fleet/v1/units", "", 401,
			envelope(401, auth.ErrNoCredential.Error())},
		{"remote PUT without credential", remote, "", "PUT", p1, b1, 401, ""},
		{"remote discovery without credential", remote, "", "GET", "/fleet/v1/discovery", "", 401, ""},
		{"remote metrics-like mount without credential", remote, "", "GET", "/ui/", "", 401, ""},
		{"remote invalid token", remote, bearer("nope-nope-nope-nope"), "GET", "/fleet/v1/units", "", 401,
			envelope(401, "invalid credential: the token is not accepted by this fleetd")},
		{"remote malformed header", remote, "Token x", "GET", "/fleet/v1/units", "", 401, ""},
		{"remote readonly GET", remote, bearer(readonlyToken), "GET", "/fleet/v1/units", "", 200, "{}"},
		{"remote readonly PUT unit", remote, bearer(readonlyToken), "PUT", p2, b2, 403, readonlyMsg("PUT", p2)},
		{"remote readonly DELETE unit", remote, bearer(readonlyToken), "DELETE", "/fleet/v1/units/x.service", "", 403,
			readonlyMsg("DELETE", "/fleet/v1/units/x.service")},
		{"remote readonly PATCH machines", remote, bearer(readonlyToken), "PATCH", "/fleet/v1/machines", "[]", 403,
			readonlyMsg("PATCH", "/fleet/v1/machines")},
		{"remote readonly kv PUT", remote, bearer(readonlyToken), "PUT", "/fleet/v1/kv/app/x", `{"value":"1"}`, 403,
			readonlyMsg("PUT", "/fleet/v1/kv/app/x")},
		{"remote readonly dashboard POST", remote, bearer(readonlyToken), "POST", "/ui/units/x.service/start", "", 403,
			readonlyMsg("POST", "/ui/units/x.service/start")},
		{"remote readonly via Basic GET", remote, basic(readonlyToken), "GET", "/ui/", "", 204, ""},
		{"remote admin PUT", remote, bearer(adminToken), "PUT", p3, b3, 201, ""},
		{"loopback without credential PUT", loopback, "", "PUT", p4, b4, 201, ""},
		{"unix socket without credential PUT", unix, "", "PUT", p5, b5, 201, ""},
		{"loopback with readonly token is readonly", loopback, bearer(readonlyToken), "DELETE", p4, "", 403, readonlyMsg("DELETE", p4)},
		{"loopback with a bad token is refused", loopback, bearer("bad-bad-bad-bad-bad"), "GET", "/fleet/v1/units", "", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			req.RemoteAddr = tc.remote
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.code)
			}
			if tc.want != "" && rec.Body.String() != tc.want {
				t.Errorf("body %s\nwant %s", rec.Body, tc.want)
			}
			if tc.code == 401 {
				ch := rec.Header().Values("WWW-Authenticate")
				if len(ch) == 0 || !strings.HasPrefix(ch[0], "Bearer") {
					t.Errorf("WWW-Authenticate %q", ch)
				}
				if strings.HasPrefix(tc.path, "/ui/") && (len(ch) < 2 || !strings.HasPrefix(ch[1], "Basic")) {
					t.Errorf("dashboard 401 lacks a Basic challenge: %q", ch)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if rec.Header().Get("Server") != "fleetd/"+testVersion {
				t.Errorf("Server header %q", rec.Header().Get("Server"))
			}
		})
	}
	for name, want := range map[string]bool{"r1.service": false, "r2.service": false, "a1.service": true, "l1.service": true, "u1.service": true} {
		if _, ok := e.unit(name); ok != want {
			t.Errorf("unit %s stored = %v, want %v", name, ok, want)
		}
	}
}

// Without a policy everything is allowed (fleet's behaviour).
func TestNoAuthAllowsAll(t *testing.T) {
	e := newEnvWith(t, Config{MachineID: machineA})
	req := httptest.NewRequest("GET", "/fleet/v1/units", nil)
	req.RemoteAddr = "192.0.2.7:41000"
	rec := httptest.NewRecorder()
	e.api.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// Status proxied to a peer that requires a credential: it works with the
// peer token and reports the peer's refusal without it.
func TestPeerTokenProxying(t *testing.T) {
	policy := testPolicy(t, false) // httptest listens on loopback: trust nothing
	localB := newTestLocal(machineB, map[string][]string{"b.service": {"line 1", "line 2"}})
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{{"with peer token", readonlyToken, true}, {"without", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, Config{Local: newTestLocal(machineA, nil), Auth: policy, PeerToken: tc.token})
			srvB := httptest.NewServer(New(Config{Store: e.store, Local: localB, Version: testVersion, Auth: policy}).Handler())
			t.Cleanup(srvB.Close)
			e.register(fleet.Machine{ID: machineA, APIURL: e.srv.URL})
			e.register(fleet.Machine{ID: machineB, APIURL: srvB.URL})
			h := http.Header{"Authorization": {"Bearer " + adminToken}}
			got := doURL(t, e.srv.URL, "PUT", "/fleet/v1/units/b.service", unitBody("b.service", "Service|ExecStart|/bin/true"),
				http.Header{"Authorization": h["Authorization"], "Content-Type": {"application/json"}})
			if got.code != 201 {
				t.Fatalf("PUT: %d %s", got.code, got.body)
			}
			e.place("b.service", machineB)

			got = doURL(t, e.srv.URL, "GET", "/fleet/v1/status/b.service", "", h)
			var list UnitStatusList
			if got.code != 200 || json.Unmarshal([]byte(got.body), &list) != nil || len(list.Statuses) != 1 {
				t.Fatalf("status: %d %s", got.code, got.body)
			}
			st := list.Statuses[0]
			if tc.ok && (st.Text != statusText("b.service", machineB) || st.Error != "") {
				t.Errorf("status with peer token: %+v", st)
			}
			if !tc.ok && !strings.Contains(st.Error, "credential") {
				t.Errorf("status without peer token: %+v, want the peer's 401", st)
			}

			got = doURL(t, e.srv.URL, "GET", "/fleet/v1/journal/b.service", "", h)
			if tc.ok && (got.code != 200 || !strings.Contains(got.body, "line 2")) {
				t.Errorf("journal with peer token: %d %q", got.code, got.body)
			}
			if !tc.ok && got.code == 200 {
				t.Errorf("journal without peer token: %d %q", got.code, got.body)
			}
		})
	}
}

// Unit names cannot name a path outside the units directory, however they
// are encoded: the request fails and nothing is stored.
func TestUnitNameEscapes(t *testing.T) {
	e := newEnvWith(t, Config{MachineID: machineA})
	for _, raw := range []string{"..%2Fx.service", "%2E%2E%2Fx.service", "a%2Fb.service", "x%00.service", "..service", "%2Fetc%2Fpasswd.service"} {
		got := e.do("PUT", "/fleet/v1/units/"+raw, "application/json", unitBody("", "Service|ExecStart|/bin/true"))
		if got.code < 300 {
			t.Errorf("PUT %s: %d %s", raw, got.code, got.body)
		}
	}
	units, err := e.store.Units(e.ctx())
	if err != nil || len(units) != 0 {
		t.Errorf("stored units %v (%v)", units, err)
	}
}

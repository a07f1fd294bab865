package api

import (
	"context"
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

func testPolicy(t *testing.T, cfg auth.Config) *auth.Policy {
	t.Helper()
	toks, err := auth.ParseTokens("tokens", []byte("admin "+adminToken+"\n"+readonlyToken+" readonly\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = toks
	return auth.New(cfg)
}

// clusterToken is accepted through auth.Config.Lookup (as fleetd does with
// the tokens registered in etcd).
const clusterToken = "cluster-admin-token-0123456789abcdef"

func fakeLookup(_ context.Context, tok string) auth.Role {
	if auth.HashToken(tok) == auth.HashToken(clusterToken) {
		return auth.RoleAdmin
	}
	return auth.RoleNone
}

// The middleware, request by request: the caller's address and credential
// against every kind of method, with nothing stored after a refusal.
func TestAuthMiddleware(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	sessions := auth.NewSessions()
	code, _, _ := sessions.NewCode()
	session, _, _ := sessions.Redeem(code)
	const hint = "use the unix socket or --token"
	e := newEnvWith(t, Config{MachineID: machineA, CredentialHint: hint,
		Auth:  testPolicy(t, auth.Config{Lookup: fakeLookup, Sessions: sessions}),
		Mount: map[string]http.Handler{"/ui/": ui}})
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
	anonChange := envelope(401, "a credential is required to change the cluster: "+hint)
	p1, b1 := unit("r1.service")
	p2, b2 := unit("r2.service")
	p3, b3 := unit("a1.service")
	p4, b4 := unit("l1.service")
	p5, b5 := unit("u1.service")
	p6, b6 := unit("c1.service")
	p7, b7 := unit("s1.service")
	for _, tc := range []struct {
		name, remote, authz, method, path, body string
		cookie                                  string
		code                                    int
		want                                    string // exact body, "" = not checked
	}{
		{name: "remote GET without credential", remote: remote, method: "GET", path: "/fleet/v1/units", code: 401,
			want: envelope(401, "a credential is required: "+hint)},
		{name: "remote PUT without credential", remote: remote, method: "PUT", path: p1, body: b1, code: 401},
		{name: "remote discovery without credential", remote: remote, method: "GET", path: "/fleet/v1/discovery", code: 401},
		{name: "remote dashboard without credential", remote: remote, method: "GET", path: "/ui/", code: 401,
			want: envelope(401, "a credential is required: "+dashboardHint)},
		{name: "remote invalid token", remote: remote, authz: bearer("nope-nope-nope-nope"), method: "GET", path: "/fleet/v1/units", code: 401,
			want: envelope(401, "invalid credential: the token is not accepted by this fleetd")},
		{name: "remote malformed header", remote: remote, authz: "Token x", method: "GET", path: "/fleet/v1/units", code: 401},
		{name: "remote readonly GET", remote: remote, authz: bearer(readonlyToken), method: "GET", path: "/fleet/v1/units", code: 200, want: "{}"},
		{name: "remote readonly PUT unit", remote: remote, authz: bearer(readonlyToken), method: "PUT", path: p2, body: b2, code: 403, want: readonlyMsg("PUT", p2)},
		{name: "remote readonly DELETE unit", remote: remote, authz: bearer(readonlyToken), method: "DELETE", path: "/fleet/v1/units/x.service", code: 403,
			want: readonlyMsg("DELETE", "/fleet/v1/units/x.service")},
		{name: "remote readonly PATCH machines", remote: remote, authz: bearer(readonlyToken), method: "PATCH", path: "/fleet/v1/machines", body: "[]", code: 403,
			want: readonlyMsg("PATCH", "/fleet/v1/machines")},
		{name: "remote readonly kv PUT", remote: remote, authz: bearer(readonlyToken), method: "PUT", path: "/fleet/v1/kv/app/x", body: `{"value":"1"}`, code: 403,
			want: readonlyMsg("PUT", "/fleet/v1/kv/app/x")},
		{name: "remote readonly dashboard POST", remote: remote, authz: bearer(readonlyToken), method: "POST", path: "/ui/units/x.service/start", code: 403,
			want: readonlyMsg("POST", "/ui/units/x.service/start")},
		{name: "remote readonly via Basic GET", remote: remote, authz: basic(readonlyToken), method: "GET", path: "/ui/", code: 204},
		{name: "remote admin PUT", remote: remote, authz: bearer(adminToken), method: "PUT", path: p3, body: b3, code: 201},
		{name: "remote cluster token (Lookup) PUT", remote: remote, authz: bearer(clusterToken), method: "PUT", path: p6, body: b6, code: 201},
		{name: "loopback GET without credential: anonymous read", remote: loopback, method: "GET", path: "/fleet/v1/units", code: 200},
		{name: "loopback dashboard without credential: anonymous read", remote: loopback, method: "GET", path: "/ui/", code: 204},
		{name: "loopback PUT without credential", remote: loopback, method: "PUT", path: p4, body: b4, code: 401, want: anonChange},
		{name: "loopback DELETE without credential", remote: loopback, method: "DELETE", path: p3, code: 401, want: anonChange},
		{name: "loopback PATCH without credential", remote: loopback, method: "PATCH", path: "/fleet/v1/machines", body: "[]", code: 401, want: anonChange},
		{name: "loopback kv PUT without credential", remote: loopback, method: "PUT", path: "/fleet/v1/kv/app/x", body: `{"value":"1"}`, code: 401, want: anonChange},
		{name: "loopback dashboard POST without credential", remote: loopback, method: "POST", path: "/ui/units/x.service/start", code: 401,
			want: envelope(401, "a credential is required to change the cluster: "+dashboardHint)},
		{name: "loopback ui-login without credential", remote: loopback, method: "POST", path: "/fleet/v1/ui-login", code: 401, want: anonChange},
		{name: "unix socket without credential PUT", remote: unix, method: "PUT", path: p5, body: b5, code: 201},
		{name: "loopback with readonly token is readonly", remote: loopback, authz: bearer(readonlyToken), method: "DELETE", path: p4, code: 403, want: readonlyMsg("DELETE", p4)},
		{name: "loopback with a bad token is refused", remote: loopback, authz: bearer("bad-bad-bad-bad-bad"), method: "GET", path: "/fleet/v1/units", code: 401},
		{name: "session cookie on the dashboard", remote: remote, cookie: session, method: "POST", path: "/ui/units/x.service/start", code: 204},
		{name: "session cookie is no credential for the API", remote: loopback, cookie: session, method: "PUT", path: p7, body: b7, code: 401, want: anonChange},
		{name: "expired or unknown session", remote: remote, cookie: strings.Repeat("A", 43), method: "POST", path: "/ui/units/x.service/start", code: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.RemoteAddr = tc.remote
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: tc.cookie})
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
				browsing := strings.HasPrefix(tc.path, "/ui/") && tc.method == "GET"
				if browsing != (len(ch) == 2 && strings.HasPrefix(ch[1], "Basic")) {
					t.Errorf("Basic challenge (wanted: %v): %q", browsing, ch)
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
	for name, want := range map[string]bool{"r1.service": false, "r2.service": false, "a1.service": true, "l1.service": false,
		"u1.service": true, "c1.service": true, "s1.service": false} {
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
	// httptest listens on loopback: no anonymous reads.
	policy := testPolicy(t, auth.Config{AnonymousRead: auth.AnonymousReadNever})
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

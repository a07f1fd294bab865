package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/auth"
)

// serve runs one request through h, as if it arrived on local (a TCP or
// unix listener address; nil: made in process). host "" keeps httptest's
// example.com; noHost sends none.
func serve(h http.Handler, local net.Addr, remote, method, target, host string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = remote
	switch host {
	case "":
	case noHost:
		req.Host = ""
	default:
		req.Host = host
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if local != nil {
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const noHost = "\x00none"

var (
	tcpLocal  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 49153}
	unixLocal = &net.UnixAddr{Name: "/run/fleet.sock", Net: "unix"}
)

// Only Host names of this fleetd are answered over TCP; the unix socket is
// not checked. The refusal is 421 in fleet's envelope and names
// api_allowed_hosts.
func TestHostCheck(t *testing.T) {
	hosts := auth.NewHostAllowlist([]string{"node1", "fleet.example.com"}, []netip.Addr{netip.MustParseAddr("10.0.0.5")})
	e := newEnvWith(t, Config{MachineID: machineA, Hosts: &hosts,
		Auth:  testPolicy(t, auth.Config{}),
		Mount: map[string]http.Handler{"/ui/": http.NotFoundHandler(), "GET /metrics": http.NotFoundHandler()}})
	h := e.api.Handler()
	for _, tc := range []struct {
		local net.Addr
		host  string
		path  string
		code  int
	}{
		{tcpLocal, "127.0.0.1:49153", "/fleet/v1/units", 200},
		{tcpLocal, "localhost:49153", "/fleet/v1/units", 200},
		{tcpLocal, "[::1]:49153", "/fleet/v1/units", 200},
		{tcpLocal, "10.0.0.5:49153", "/fleet/v1/units", 200},
		{tcpLocal, "NODE1:49153", "/fleet/v1/units", 200},
		{tcpLocal, "fleet.example.com", "/fleet/v1/units", 200},
		{tcpLocal, "attacker.example:49153", "/fleet/v1/units", 421},
		{tcpLocal, "attacker.example", "/ui/", 421},
		{tcpLocal, "attacker.example", "/metrics", 421},
		{tcpLocal, "attacker.example", "/ui/login?code=x", 421},
		{tcpLocal, "10.0.0.6:49153", "/fleet/v1/units", 421},
		{tcpLocal, noHost, "/fleet/v1/units", 421},
		{unixLocal, "attacker.example", "/fleet/v1/units", 200},
		{unixLocal, "domain-sock", "/fleet/v1/units", 200},
	} {
		rec := serve(h, tc.local, "127.0.0.1:5000", "GET", tc.path, tc.host, nil)
		if rec.Code != tc.code {
			t.Errorf("Host %q %s over %v: %d %s, want %d", tc.host, tc.path, tc.local, rec.Code, rec.Body, tc.code)
			continue
		}
		if tc.code == 421 {
			var env errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code != 421 ||
				!strings.Contains(env.Error.Message, "api_allowed_hosts") || !strings.Contains(env.Error.Message, "DNS rebinding") {
				t.Errorf("Host %q: body %s", tc.host, rec.Body)
			}
		}
	}
}

// Public paths are served without a credential, to GET only; everything
// else still needs one.
func TestPublicPaths(t *testing.T) {
	var seen []string
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	})
	e := newEnvWith(t, Config{MachineID: machineA,
		Auth:        testPolicy(t, auth.Config{AnonymousRead: auth.AnonymousReadNever}),
		PublicPaths: []string{auth.LoginPath, "/ui/static/"},
		Mount:       map[string]http.Handler{"/ui/": ui}})
	h := e.api.Handler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/ui/login?code=abc", 204},
		{"HEAD", "/ui/login", 204},
		{"GET", "/ui/static/app.css", 204},
		{"POST", "/ui/login", 401},
		{"GET", "/ui/login/x", 401},
		{"GET", "/ui/", 401},
		{"GET", "/ui/static", 401},
		{"GET", "/fleet/v1/units", 401},
	} {
		if rec := serve(h, tcpLocal, "192.0.2.1:5", tc.method, tc.path, "127.0.0.1", nil); rec.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.code)
		}
	}
	if len(seen) != 3 {
		t.Errorf("handler saw %v", seen)
	}
}

// The mounted handlers get the caller's identity in the request context,
// so that a request they forward in process (the dashboard's journal) is
// judged as its caller.
func TestIdentityInContext(t *testing.T) {
	var got []auth.Identity
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		got = append(got, id)
	})
	e := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, auth.Config{}), Mount: map[string]http.Handler{"/ui/": ui}})
	req := httptest.NewRequest("GET", "/ui/units/x.service", nil)
	req.RemoteAddr = "@"
	e.api.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if req.Pattern != "/ui/" {
		t.Errorf("the caller's request has pattern %q, want the mux's /ui/ (metrics label routes by it)", req.Pattern)
	}
	got = nil
	serve(e.api.Handler(), unixLocal, "@", "GET", "/ui/", "", nil)
	serve(e.api.Handler(), tcpLocal, "127.0.0.1:5", "GET", "/ui/", "", nil)
	serve(e.api.Handler(), tcpLocal, "192.0.2.1:5", "GET", "/ui/", "", http.Header{"Authorization": {"Bearer " + readonlyToken}})
	want := []auth.Identity{{Role: auth.RoleAdmin, Via: auth.ViaSocket}, {Role: auth.RoleReadOnly, Via: auth.ViaAnonymous}, {Role: auth.RoleReadOnly, Via: auth.ViaToken}}
	if len(got) != len(want) {
		t.Fatalf("identities %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// POST /fleet/v1/ui-login: admins get a one-time URL on the advertised
// address; anybody else is refused; a fleetd without TCP address has none.
func TestUILogin(t *testing.T) {
	sessions := auth.NewSessions()
	e := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, auth.Config{}),
		Sessions: sessions, DashboardURL: "http://10.0.0.5:49153/"})
	h := e.api.Handler()
	before := time.Now()
	rec := serve(h, unixLocal, "@", "POST", "/fleet/v1/ui-login", "", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("socket: %d %s", rec.Code, rec.Body)
	}
	var l UILogin
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(l.URL)
	if err != nil || u.Scheme != "http" || u.Host != "10.0.0.5:49153" || u.Path != auth.LoginPath || len(u.Query().Get("code")) != 43 {
		t.Fatalf("url %q", l.URL)
	}
	if l.Expires.Before(before.Add(auth.LoginCodeTTL-time.Second)) || l.Expires.After(time.Now().Add(auth.LoginCodeTTL)) {
		t.Errorf("expires %v", l.Expires)
	}
	if l.SessionSeconds != 12*3600 {
		t.Errorf("sessionSeconds %d", l.SessionSeconds)
	}
	sess, _, err := sessions.Redeem(u.Query().Get("code"))
	if err != nil || !sessions.Valid(sess) {
		t.Fatalf("the code does not redeem: %v", err)
	}
	for _, tc := range []struct {
		name, method, remote, authz string
		code                        int
	}{
		{"admin token", "POST", "192.0.2.1:5", "Bearer " + adminToken, 200},
		{"read-only token", "POST", "192.0.2.1:5", "Bearer " + readonlyToken, 403},
		{"anonymous loopback", "POST", "127.0.0.1:5", "", 401},
		{"GET", "GET", "@", "", 405},
	} {
		hdr := http.Header{}
		if tc.authz != "" {
			hdr.Set("Authorization", tc.authz)
		}
		local := net.Addr(tcpLocal)
		if tc.remote == "@" {
			local = unixLocal
		}
		if rec := serve(h, local, tc.remote, tc.method, "/fleet/v1/ui-login", "", hdr); rec.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
	}

	none := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, auth.Config{}), Sessions: sessions})
	if rec := serve(none.api.Handler(), unixLocal, "@", "POST", "/fleet/v1/ui-login", "", nil); rec.Code != 404 || !strings.Contains(rec.Body.String(), "no TCP API address") {
		t.Errorf("without a dashboard URL: %d %s", rec.Code, rec.Body)
	}
}

package web

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

const (
	mA = "aaaaaaaa11111111aaaaaaaa11111111"
	mB = "bbbbbbbb22222222bbbbbbbb22222222"
)

type env struct {
	t     *testing.T
	ctx   context.Context
	store *store.Store
	h     *Handler
	srv   *httptest.Server
	jar   http.CookieJar
	hc    *http.Client
}

// newEnv is the dashboard on a real store (real embedded etcd) with two
// machines, a placed running unit and an unplaced one. api answers the
// journal requests.
func newEnv(t *testing.T, api http.Handler, opts ...func(*Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	st := store.New(etcdkv.New(etcdtest.New(t)), "/web-test/")
	e := &env{t: t, ctx: ctx, store: st}
	for i, id := range []string{mA, mB} {
		m := fleet.Machine{ID: id, PublicIP: "10.0.0." + string(rune('1'+i)), Metadata: map[string]string{"az": "a"}}
		if i == 0 {
			m.Capacity = fleet.Resources{CPUMilli: 2000, MemoryBytes: 1 << 30}
		}
		pr, err := st.Register(ctx, m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			opts, err := unitfile.Parse([]byte("[Unit]\nDescription=Web <b>server</b>\n\n[Service]\nExecStart=/bin/sleep 100\n\n[X-Fleet]\nMemory=400M\nCPU=0.5\n"))
			if err != nil {
				t.Fatal(err)
			}
			u := fleet.Unit{Name: "web.service", Options: opts, Hash: unitfile.Hash(opts), DesiredState: fleet.JobStateLaunched}
			if _, err := st.CreateUnit(ctx, u); err != nil {
				t.Fatal(err)
			}
			lead, err := st.Campaign(ctx, id, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ch := store.Changes{
				Put:        []store.ScheduleEntry{{Unit: "web.service", Machine: id, Hash: u.Hash, DesiredState: fleet.JobStateLaunched}},
				PutReasons: []fleet.Reason{{Unit: "lonely.service", Summary: "no machine has metadata role=db", PerMachine: map[string]string{mA: "metadata mismatch"}}},
			}
			if _, err := st.CreateUnit(ctx, fleet.Unit{Name: "lonely.service", Options: opts, Hash: u.Hash + "x", DesiredState: fleet.JobStateLaunched}); err != nil {
				t.Fatal(err)
			}
			if err := st.Apply(ctx, lead, ch); err != nil {
				t.Fatal(err)
			}
			if err := st.PutUnitStates(ctx, pr.Lease(), []fleet.UnitState{{Name: "web.service", MachineID: id, Hash: u.Hash, LoadState: "loaded", ActiveState: "active", SubState: "running", JobState: fleet.JobStateLaunched}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := Config{Store: st, API: api, MachineID: mA, Version: "test", Heartbeat: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	e.h = New(cfg)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.jar, _ = cookiejar.New(nil)
	e.hc = &http.Client{Jar: e.jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := e.hc.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token loads a page and returns the CSRF token in its forms.
func (e *env) token() string {
	e.t.Helper()
	_, body := e.get("/ui/")
	m := tokenRe.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token in page:\n%s", body)
	}
	return m[1]
}

func (e *env) post(path string, form url.Values, hdr map[string]string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) desired(name string) fleet.JobState {
	e.t.Helper()
	u, err := e.store.Unit(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.DesiredState
}

func TestOverviewRendersMachinesUnitsAndReasons(t *testing.T) {
	e := newEnv(t, nil)
	code, body := e.get("/ui/")
	if code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	for _, want := range []string{
		`data-machine="` + mA + `"`, `data-machine="` + mB + `"`, "10.0.0.1", "10.0.0.2", "az=a",
		`<span class="tag">leader</span>`,
		`data-unit="web.service"`, `<span class="badge ok">active</span>`, `data-unit="lonely.service"`,
		"no machine has metadata role=db", `action="/ui/units/web.service/stop"`, `name="csrf"`,
		`src="/ui/static/app.js"`, `data-events="/ui/events"`,
		// Machine A offers 2 CPUs and 1G; web.service reserves 0.5 and 400M.
		"cpu 0.5 of 2 · memory 400M of 1G",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// The fragment is the live part only.
	code, frag := e.get("/ui/fragment/overview")
	if code != 200 || strings.Contains(frag, "<html") || !strings.Contains(frag, `data-unit="web.service"`) {
		t.Errorf("fragment %d:\n%s", code, frag)
	}
	resp, _ := e.hc.Get(e.srv.URL + "/ui/")
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", resp.Header)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == csrfCookie {
			cookie = c
		}
	}
	if cookie != nil {
		t.Errorf("a second page load must reuse the token cookie, got a new one")
	}
}

func TestUnitPageShowsFileAndEscapes(t *testing.T) {
	e := newEnv(t, nil)
	code, body := e.get("/ui/units/web.service")
	if code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	for _, want := range []string{"ExecStart=/bin/sleep 100", "Web &lt;b&gt;server&lt;/b&gt;", `data-src="/ui/units/web.service/journal"`, "running", `data-unit="web.service"`} {
		if !strings.Contains(body, want) {
			t.Errorf("unit page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>server</b>") {
		t.Error("description not escaped")
	}
	_, body = e.get("/ui/units/lonely.service")
	if !strings.Contains(body, "Not placed:") || !strings.Contains(body, "metadata mismatch") {
		t.Errorf("unplaced unit page lacks its reason:\n%s", body)
	}
	if code, _ := e.get("/ui/units/nope.service"); code != 404 {
		t.Errorf("missing unit: %d", code)
	}
	if code, _ := e.get("/ui/nope"); code != 404 {
		t.Errorf("unknown page: %d", code)
	}
	if code, body := e.get("/ui/static/app.css"); code != 200 || !strings.Contains(body, "max-width: 700px") {
		t.Errorf("static css: %d", code)
	}
}

func TestCSRFRejectionsChangeNothing(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token()
	origin := e.srv.URL
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
		want string
	}{
		{"missing token", url.Values{}, map[string]string{"Origin": origin}, "invalid CSRF token"},
		{"invalid token", url.Values{"csrf": {"AAAA" + tok[4:]}}, map[string]string{"Origin": origin}, "invalid CSRF token"},
		{"foreign origin", url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}, "cross-origin"},
		{"foreign referer", url.Values{"csrf": {tok}}, map[string]string{"Referer": "http://evil.example/ui/"}, "cross-origin"},
		{"no origin nor referer", url.Values{"csrf": {tok}}, nil, "without Origin"},
		{"cross-site fetch", url.Values{"csrf": {tok}}, map[string]string{"Origin": origin, "Sec-Fetch-Site": "cross-site"}, "cross-site"},
		{"null origin", url.Values{"csrf": {tok}}, map[string]string{"Origin": "null"}, "cross-origin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, action := range []string{"stop", "destroy"} {
				code, body := e.post("/ui/units/web.service/"+action, tc.form, tc.hdr)
				if code != http.StatusForbidden || !strings.Contains(body, tc.want) {
					t.Errorf("%s: %d, want 403 %q:\n%s", action, code, tc.want, body)
				}
			}
			if got := e.desired("web.service"); got != fleet.JobStateLaunched {
				t.Errorf("desired state changed to %s", got)
			}
		})
	}
	// Without the cookie the form token alone is not enough.
	req, _ := http.NewRequest("POST", e.srv.URL+"/ui/units/web.service/stop", strings.NewReader(url.Values{"csrf": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || e.desired("web.service") != fleet.JobStateLaunched {
		t.Errorf("no cookie: %d", resp.StatusCode)
	}
}

func TestActionsFromLoopback(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token()
	origin := map[string]string{"Origin": e.srv.URL}
	code, _ := e.post("/ui/units/web.service/stop", url.Values{"csrf": {tok}, "return": {"/ui/"}}, origin)
	if code != http.StatusSeeOther || e.desired("web.service") != fleet.JobStateLoaded {
		t.Fatalf("stop: %d, desired %s", code, e.desired("web.service"))
	}
	code, body := e.post("/ui/units/web.service/start", url.Values{"csrf": {tok}}, map[string]string{"Origin": e.srv.URL, "X-Fleet-UI": "1"})
	if code != 200 || !strings.Contains(body, `"action":"start"`) || e.desired("web.service") != fleet.JobStateLaunched {
		t.Fatalf("start: %d %s", code, body)
	}
	// The token may come in a header instead (Referer as the origin proof).
	code, _ = e.post("/ui/units/web.service/stop", nil, map[string]string{"Referer": e.srv.URL + "/ui/", "X-CSRF-Token": tok, "X-Fleet-UI": "1"})
	if code != 200 || e.desired("web.service") != fleet.JobStateLoaded {
		t.Fatalf("header token: %d", code)
	}
	if code, body := e.post("/ui/units/nope.service/start", url.Values{"csrf": {tok}}, origin); code != 404 {
		t.Errorf("missing unit: %d %s", code, body)
	}
	if code, _ := e.post("/ui/units/web.service/explode", url.Values{"csrf": {tok}}, origin); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
	if code, _ := e.post("/ui/units/web@.service/start", url.Values{"csrf": {tok}}, origin); code != 400 {
		t.Errorf("template start: %d", code)
	}
	code, _ = e.post("/ui/units/lonely.service/destroy", url.Values{"csrf": {tok}}, origin)
	if _, err := e.store.Unit(e.ctx, "lonely.service"); code != http.StatusSeeOther || err == nil {
		t.Errorf("destroy: %d, unit still there: %v", code, err)
	}
}

func TestNonLoopbackMutationRefused(t *testing.T) {
	hosts := auth.NewHostAllowlist([]string{"fleet.example"}, nil)
	e := newEnv(t, nil, func(c *Config) { c.Hosts = &hosts })
	tok := e.token()
	form := url.Values{"csrf": {tok}}
	req := httptest.NewRequest("POST", "http://fleet.example:49153/ui/units/web.service/stop", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://fleet.example:49153")
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	req.RemoteAddr = "10.1.2.3:40000"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "admin credential") {
		t.Fatalf("non-loopback: %d %s", rec.Code, rec.Body)
	}
	if e.desired("web.service") != fleet.JobStateLaunched {
		t.Fatal("desired state changed")
	}
	// Reading is allowed from anywhere by the default authorizer.
	req = httptest.NewRequest("GET", "http://fleet.example:49153/ui/", nil)
	req.RemoteAddr = "10.1.2.3:40000"
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("non-loopback read: %d", rec.Code)
	}
	// The same request from loopback goes through.
	req = httptest.NewRequest("POST", "http://fleet.example:49153/ui/units/web.service/stop", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://fleet.example:49153")
	req.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok})
	req.RemoteAddr = "[::1]:40000"
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || e.desired("web.service") != fleet.JobStateLoaded {
		t.Fatalf("loopback: %d %s", rec.Code, rec.Body)
	}
}

// The Origin (or Referer) must name a host of the allowlist with the
// request's scheme and its Host's port; the request's own Host is no
// proof (a DNS-rebinding page chooses it).
func TestCSRFOriginAllowlist(t *testing.T) {
	hosts := auth.NewHostAllowlist([]string{"node1.example"}, []netip.Addr{netip.MustParseAddr("10.0.0.5")})
	for _, tc := range []struct {
		name, host, origin, referer string
		tls                         bool
		ok                          bool
	}{
		{name: "loopback origin", host: "127.0.0.1:49153", origin: "http://127.0.0.1:49153", ok: true},
		{name: "localhost origin", host: "localhost:49153", origin: "http://localhost:49153", ok: true},
		{name: "IPv6 loopback", host: "[::1]:49153", origin: "http://[::1]:49153", ok: true},
		{name: "allowed name", host: "node1.example:49153", origin: "http://node1.example:49153", ok: true},
		{name: "allowed IP", host: "10.0.0.5:49153", origin: "http://10.0.0.5:49153", ok: true},
		{name: "default port", host: "node1.example", origin: "http://node1.example:80", ok: true},
		{name: "https", host: "node1.example:443", origin: "https://node1.example", tls: true, ok: true},
		{name: "referer", host: "127.0.0.1:49153", referer: "http://127.0.0.1:49153/ui/units/x.service", ok: true},
		{name: "rebinding: Host and Origin agree but are not ours", host: "attacker.example:49153", origin: "http://attacker.example:49153"},
		{name: "rebinding referer", host: "attacker.example:49153", referer: "http://attacker.example:49153/"},
		{name: "another port of an allowed host", host: "127.0.0.1:49153", origin: "http://127.0.0.1:8080"},
		{name: "another port, default", host: "127.0.0.1:49153", origin: "http://127.0.0.1"},
		{name: "scheme downgrade", host: "node1.example:443", origin: "http://node1.example:443", tls: true},
		{name: "https origin to http", host: "127.0.0.1:49153", origin: "https://127.0.0.1:49153"},
		{name: "user info", host: "127.0.0.1:49153", referer: "http://u:p@127.0.0.1:49153/ui/"},
		{name: "null origin", host: "127.0.0.1:49153", origin: "null"},
		{name: "not a URL", host: "127.0.0.1:49153", origin: "http://%zz"},
	} {
		r := httptest.NewRequest("POST", "/ui/units/x.service/start", strings.NewReader("csrf="+strings.Repeat("A", 43)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Host = tc.host
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.referer != "" {
			r.Header.Set("Referer", tc.referer)
		}
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: strings.Repeat("A", 43)})
		msg := checkCSRF(r, hosts)
		if (msg == "") != tc.ok {
			t.Errorf("%s: %q (ok %v)", tc.name, msg, tc.ok)
		}
		if !tc.ok && !strings.Contains(msg, "cross-origin") {
			t.Errorf("%s: message %q", tc.name, msg)
		}
	}
}

// /ui/login exchanges a code for an HttpOnly, SameSite=Strict session
// cookie once; a second use, an unknown or an expired code get a page
// that says to run fleetctl dashboard again.
func TestLogin(t *testing.T) {
	sessions := auth.NewSessions()
	e := newEnv(t, nil, func(c *Config) { c.Sessions = sessions })
	code, _, err := sessions.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.hc.Get(e.srv.URL + "/ui/login?code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == auth.SessionCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge != 12*3600 {
		t.Fatalf("session cookie %+v", c)
	}
	if !sessions.Valid(c.Value) {
		t.Fatal("the cookie is not a valid session")
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q", resp.Header.Get("Referrer-Policy"))
	}
	for _, bad := range []string{code, "", strings.Repeat("A", 43)} {
		got, body := e.get("/ui/login?code=" + bad)
		if got != http.StatusForbidden || !strings.Contains(body, "Run `fleetctl dashboard` again") {
			t.Errorf("code %q: %d\n%s", bad, got, body)
		}
	}
	// Over TLS the cookie is Secure.
	code, _, _ = sessions.NewCode()
	r := httptest.NewRequest("GET", "https://127.0.0.1/ui/login?code="+code, nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	if cs := (&http.Response{Header: rec.Header()}).Cookies(); rec.Code != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure {
		t.Errorf("TLS login: %d %v", rec.Code, rec.Header())
	}
	// Without Sessions there is no login.
	none := newEnv(t, nil)
	if got, _ := none.get("/ui/login?code=x"); got != http.StatusNotFound {
		t.Errorf("no sessions: %d", got)
	}
}

// The login page and static files need no credential, the rest does; a
// reader who may not act is told how to log in.
func TestPublicPagesAndReadOnlyBanner(t *testing.T) {
	h := New(Config{Authorizer: denyAll{}, Sessions: auth.NewSessions()})
	for path, want := range map[string]int{"/ui/": 403, "/ui/events": 403, "/ui/static/app.js": 200, "/ui/login?code=x": 403} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	ro := newEnv(t, nil, func(c *Config) { c.Authorizer = readOnly{} })
	if _, body := ro.get("/ui/"); !strings.Contains(body, `id="readonly"`) || !strings.Contains(body, "fleetctl dashboard") {
		t.Errorf("read-only page has no login hint")
	}
	admin := newEnv(t, nil)
	if _, body := admin.get("/ui/"); strings.Contains(body, `id="readonly"`) {
		t.Errorf("admin page has the read-only hint")
	}
}

type readOnly struct{}

func (readOnly) CanRead(*http.Request) bool  { return true }
func (readOnly) CanAdmin(*http.Request) bool { return false }

type denyAll struct{}

func (denyAll) CanRead(*http.Request) bool  { return false }
func (denyAll) CanAdmin(*http.Request) bool { return false }

func TestAuthorizerHook(t *testing.T) {
	h := New(Config{Authorizer: denyAll{}})
	for _, path := range []string{"/ui/", "/ui/events", "/ui/units/x.service"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 403 {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "@": true, "10.0.0.1:4": false} {
		if got := (LoopbackAuthorizer{}).CanAdmin(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("LoopbackAuthorizer.CanAdmin from %q = %v", addr, got)
		}
	}
}

// sseReader reads "event"/"data" pairs.
type sseEvent struct{ event, data string }

func readSSE(t *testing.T, r *bufio.Reader) sseEvent {
	t.Helper()
	ch := make(chan sseEvent, 1)
	go func() {
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				ch <- sseEvent{event: "EOF"}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					ch <- ev
					return
				}
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no server-sent event within 10s")
	}
	return sseEvent{}
}

// sseEvents reads server-sent events from r in the background until it
// ends (then the channel is closed); comments (keep-alives) are left out.
func sseEvents(t *testing.T, r *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					select {
					case ch <- ev:
					case <-t.Context().Done():
						return
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

const probePrefix = "stream-probe-"

// awaitLive returns once the event stream follows the store: the stream
// starts its etcd watch after answering, so a change made right after the
// answer may come before the watch. It submits probe units until the
// stream carries one.
func (e *env) awaitLive(evs <-chan sseEvent) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		name := probePrefix + strconv.Itoa(i) + ".service"
		if _, err := e.store.CreateUnit(e.ctx, fleet.Unit{Name: name, Hash: "h", DesiredState: fleet.JobStateInactive}); err != nil {
			e.t.Fatal(err)
		}
		select {
		case ev, ok := <-evs:
			if !ok {
				e.t.Fatal("stream ended")
			}
			if !strings.Contains(ev.data, probePrefix) {
				e.t.Fatalf("event %+v on a stream where nothing else happens", ev)
			}
			return
		case <-time.After(min(10*time.Millisecond<<i, time.Second)):
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the stream carried no probe within 10s")
		}
	}
}

// nextEvent returns the next event that is not a probe's, within 10 s.
func nextEvent(t *testing.T, evs <-chan sseEvent) sseEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatal("stream ended")
			}
			if !strings.Contains(ev.data, probePrefix) {
				return ev
			}
		case <-deadline:
			t.Fatal("no server-sent event within 10s")
		}
	}
}

func TestEventStream(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.hc.Get(e.srv.URL + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	evs := sseEvents(t, bufio.NewReader(resp.Body))
	e.awaitLive(evs)
	if err := e.store.SetDesiredState(e.ctx, "web.service", fleet.JobStateLoaded); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, evs)
	if ev.event != "fleet" || !strings.Contains(ev.data, `"type":"unit.desired"`) || !strings.Contains(ev.data, `"unit":"web.service"`) {
		t.Fatalf("got %+v", ev)
	}
}

func TestJournalStreamThroughAPI(t *testing.T) {
	var got *http.Request
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.URL.Path == "/fleet/v1/journal/missing.service" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":404,"message":"unit does not exist"}}`))
			return
		}
		w.WriteHeader(200)
		w.Write([]byte("line one\nline "))
		w.(http.Flusher).Flush()
		w.Write([]byte("two\n"))
	})
	e := newEnv(t, api)
	req, _ := http.NewRequest("GET", e.srv.URL+"/ui/units/web.service/journal", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for _, want := range []sseEvent{{"reset", ""}, {"line", "line one"}, {"line", "line two"}, {"status", "journal ended"}} {
		if ev := readSSE(t, r); ev != want {
			t.Fatalf("got %+v, want %+v", ev, want)
		}
	}
	if got.URL.Query().Get("follow") != "true" || got.Header.Get("Authorization") != "Bearer x" {
		t.Errorf("API request %v %v", got.URL, got.Header)
	}

	resp2, err := e.hc.Get(e.srv.URL + "/ui/units/missing.service/journal")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if ev := readSSE(t, bufio.NewReader(resp2.Body)); ev.event != "status" || !strings.Contains(ev.data, "unit does not exist") {
		t.Fatalf("got %+v", ev)
	}
}

// putRollout stores r as its unit's rollout record (replacing a finished
// one), as fleetctl rollout does, without touching unit files.
func (e *env) putRollout(r rollout.Rollout) {
	e.t.Helper()
	if err := e.store.StartRollout(e.ctx, r, fleet.Unit{}, 0, store.Revision{}); err != nil {
		e.t.Fatal(err)
	}
}

const (
	fromHash = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	toHash   = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func newRollout(unit string, phase rollout.Phase, updated time.Time, targets ...rollout.Target) rollout.Rollout {
	return rollout.Rollout{
		Spec: rollout.Spec{Unit: unit, FromHash: fromHash, FromRevision: 3, ToHash: toHash, ToRevision: 4,
			MaxParallel: 1, MinHealthyTime: 10 * time.Second, HealthyDeadline: time.Minute, User: "alice"},
		Phase: phase, Targets: targets, Created: updated.Add(-time.Minute), Updated: updated,
	}
}

// appRollout is a running rollout of template app@.service: 2 of 4
// instances updated, one waiting for health.
func appRollout(now time.Time) rollout.Rollout {
	return newRollout("app@.service", rollout.PhaseRunning, now,
		rollout.Target{Name: "app@1.service", Status: rollout.TargetUpdated},
		rollout.Target{Name: "app@2.service", Status: rollout.TargetUpdated},
		rollout.Target{Name: "app@3.service", Status: rollout.TargetUpdating, Started: now},
		rollout.Target{Name: "app@4.service", Status: rollout.TargetPending})
}

func TestOverviewShowsRollouts(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.putRollout(appRollout(now))
	e.putRollout(newRollout("db.service", rollout.PhaseFailed, now.Add(-time.Minute),
		rollout.Target{Name: "db.service", Status: rollout.TargetFailed, Message: "db.service: failed (exit-code)"}))
	failed, _ := e.store.Rollout(e.ctx, "db.service")
	failed.Rollout.Reason = "db.service: failed (exit-code) <script>"
	if _, err := e.store.UpdateRollout(e.ctx, failed); err != nil {
		t.Fatal(err)
	}
	e.putRollout(newRollout("recent.service", rollout.PhaseDone, now.Add(-2*time.Minute),
		rollout.Target{Name: "recent.service", Status: rollout.TargetUpdated}))
	e.putRollout(newRollout("old.service", rollout.PhaseDone, now.Add(-time.Hour),
		rollout.Target{Name: "old.service", Status: rollout.TargetUpdated}))

	// The section is part of the live fragment the script re-fetches.
	code, frag := e.get("/ui/fragment/overview")
	if code != 200 {
		t.Fatalf("%d\n%s", code, frag)
	}
	for _, want := range []string{
		`id="rollouts"`, `<span class="count" id="rollout-count">3</span>`,
		`data-rollout="app@.service" data-phase="running" data-active="true"`,
		`<progress class="bar run" value="2" max="4"`, "2/4 updated",
		"2/4 updated, 1 in progress, waiting for health", // rollout.Progress
		`revision 3 <code title="` + fromHash + `">1111111</code> → 4 <code title="` + toHash + `">2222222</code>`,
		`<span class="badge run phase">running</span>`, "by alice",
		`data-rollout="db.service" data-phase="failed"`, `<progress class="bar bad" value="0" max="1"`,
		`<div class="reason">db.service: failed (exit-code) &lt;script&gt;</div>`,
		`data-rollout="recent.service" data-phase="done"`, "done: 1/1 updated", "ended <time",
	} {
		if !strings.Contains(frag, want) {
			t.Errorf("overview fragment lacks %q", want)
		}
	}
	if strings.Contains(frag, "old.service") {
		t.Error("a rollout that ended an hour ago is shown")
	}
	if strings.Contains(frag, "<script>") || strings.Contains(frag, "style=") {
		t.Error("unescaped reason or inline style")
	}
	// Not over first, then by unit.
	if i, j := strings.Index(frag, `data-rollout="app@.service"`), strings.Index(frag, `data-rollout="db.service"`); i < 0 || j < i {
		t.Errorf("running rollout not listed first")
	}
	// The full page carries it inside the live part.
	_, page := e.get("/ui/")
	if live := strings.Index(page, `id="live"`); live < 0 || strings.Index(page, `id="rollouts"`) < live {
		t.Error("rollouts section outside the live fragment")
	}

	// Ten minutes after it ended, a finished rollout leaves the overview.
	e.h.now = func() time.Time { return now.Add(9 * time.Minute) }
	_, frag = e.get("/ui/fragment/overview")
	if strings.Contains(frag, "recent.service") || !strings.Contains(frag, "db.service") || !strings.Contains(frag, "app@.service") {
		t.Errorf("at +9m want app@ and db (ended at -1m) but not recent (ended at -2m):\n%s", frag)
	}
	e.h.now = func() time.Time { return now.Add(time.Hour) }
	_, frag = e.get("/ui/fragment/overview")
	if strings.Contains(frag, "db.service") || !strings.Contains(frag, `<span class="count" id="rollout-count">1</span>`) {
		t.Errorf("at +1h only the running rollout should be left:\n%s", frag)
	}
}

func TestOverviewWithoutRollouts(t *testing.T) {
	e := newEnv(t, nil)
	_, frag := e.get("/ui/fragment/overview")
	if strings.Contains(frag, `id="rollouts"`) {
		t.Error("empty rollouts section shown")
	}
}

func TestUnitPageShowsRollout(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"app@.service", "app@3.service"} {
		if _, err := e.store.CreateUnit(e.ctx, fleet.Unit{Name: name, Hash: toHash, DesiredState: fleet.JobStateLaunched}); err != nil {
			t.Fatal(err)
		}
	}
	e.putRollout(appRollout(time.Now()))

	// The template's page: the bar and every target.
	code, body := e.get("/ui/units/app@.service")
	if code != 200 {
		t.Fatalf("%d\n%s", code, body)
	}
	for _, want := range []string{
		`id="unit-rollout"`, "<h2>Rollout</h2>", `<progress class="bar run" value="2" max="4"`,
		"2/4 updated, 1 in progress, waiting for health",
		`data-target="app@3.service"`, `<span class="badge run">updating</span>`, `<span class="badge off">pending</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("template page lacks %q", want)
		}
	}
	// An instance's page (and its live fragment): the template's rollout
	// and where this instance is.
	for _, path := range []string{"/ui/units/app@3.service", "/ui/fragment/units/app@3.service"} {
		_, body = e.get(path)
		for _, want := range []string{
			`Rollout of <a href="/ui/units/app@.service">app@.service</a>`, `<progress class="bar run" value="2" max="4"`,
			`This instance: <span class="badge run">updating</span>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
	if _, body = e.get("/ui/units/app@3.service"); !strings.Contains(body, `data-owner="app@.service"`) {
		t.Error("instance page does not name its template for the event feed")
	}
	// A unit without a rollout shows none.
	if _, body = e.get("/ui/units/web.service"); strings.Contains(body, "unit-rollout") || strings.Contains(body, "data-owner") {
		t.Error("rollout shown for a unit that never had one")
	}

	// Once over, the unit page keeps showing the last one.
	rec, _ := e.store.Rollout(e.ctx, "app@.service")
	rec.Rollout.Phase, rec.Rollout.Reason = rollout.PhaseFailed, "app@3.service: failed (exit-code)"
	rec.Rollout.Targets[2].Status, rec.Rollout.Targets[2].Message = rollout.TargetFailed, "failed (exit-code) after 3s"
	if _, err := e.store.UpdateRollout(e.ctx, rec); err != nil {
		t.Fatal(err)
	}
	_, body = e.get("/ui/fragment/units/app@3.service")
	for _, want := range []string{"Last rollout of", `<div class="reason">app@3.service: failed (exit-code)</div>`,
		`This instance: <span class="badge bad">failed</span> <span class="reason">failed (exit-code) after 3s</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("instance fragment after failure lacks %q:\n%s", want, body)
		}
	}
}

// Rollout events come on the dashboard's stream, where the script
// re-renders the live part on every event.
func TestEventStreamCarriesRolloutEvents(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.hc.Get(e.srv.URL + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := sseEvents(t, bufio.NewReader(resp.Body))
	e.awaitLive(evs)
	e.putRollout(appRollout(time.Now()))
	ev := nextEvent(t, evs)
	if ev.event != "fleet" || !strings.Contains(ev.data, `"type":"`+fleet.EventRolloutStarted+`"`) || !strings.Contains(ev.data, `"unit":"app@.service"`) {
		t.Fatalf("got %+v", ev)
	}
}

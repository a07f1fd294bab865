package e2e

// The API side of "secure by default", end to end: anonymous TCP callers
// may read but never change, the unix socket is private (even to a local
// user like nobody, even under umask 000), Host names that are not
// fleetd's are refused (DNS rebinding, also from a real browser), and the
// dashboard acts only after `fleetctl dashboard`'s one-time login.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetd/fleet/internal/testcluster"
)

// adminTokenOf reads the admin token fleetd wrote to <data_dir>/admin-token.
func adminTokenOf(t *testing.T, m *testcluster.Machine) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.DataDir, "admin-token"))
	if err != nil {
		t.Fatalf("admin token of machine %d: %v", m.Index, err)
	}
	return strings.TrimSpace(string(b))
}

// rawCall sends one request with an optional Host and bearer token and
// returns the status and body.
func rawCall(t *testing.T, method, rawURL, host, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// markerUnit is a unit that touches marker when it runs.
func markerUnit(name, marker string) string {
	return fmt.Sprintf(`{"name":%q,"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/sh -c 'touch %s; sleep 1000'"}]}`, name, marker)
}

// Anonymous callers over TCP loopback may read; every change is 401 with
// a message that says how to authenticate, and nothing of it runs.
// fleetctl without a credential is told the same; --token-file works.
func TestSecurityAPIAnonymousChangeRefused(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	base := c.Machines[0].APIURL
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")

	if code, body := rawCall(t, "GET", base+"/fleet/v1/machines", "", "", ""); code != 200 || !strings.Contains(body, c.Machines[0].ID) {
		t.Fatalf("anonymous GET: %d %s", code, body)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/fleet/v1/units/anon.service", markerUnit("anon.service", marker)},
		{"PUT", "/v1-alpha/units/anon2.service", markerUnit("anon2.service", marker)},
		{"PUT", "/fleet/v1/kv/anon/x", `{"value":"1"}`},
		{"PATCH", "/fleet/v1/machines", `[]`},
		{"PUT", "/fleet/v1/machines/" + c.Machines[0].ID + "/drain", ""},
		{"POST", "/fleet/v1/ui-login", ""},
		{"POST", "/ui/units/anon.service/start", ""},
	} {
		code, body := rawCall(t, tc.method, base+tc.path, "", "", tc.body)
		if code != 401 || !strings.Contains(body, "a credential is required to change the cluster") {
			t.Errorf("anonymous %s %s: %d %s", tc.method, tc.path, code, body)
		}
		if strings.HasPrefix(tc.path, "/fleet/") && !strings.Contains(body, filepath.Join(c.Machines[0].DataDir, "admin-token")) {
			t.Errorf("anonymous %s %s: the message does not name the admin-token file: %s", tc.method, tc.path, body)
		}
	}

	// fleetctl without a credential is told how to get one.
	unit := writeUnit(t, dir, "hello.service", helloUnit)
	_, errOut, code := fleetctlAs(t.Context(), base, nil, "start", "--no-block", unit)
	if code == 0 || !strings.Contains(errOut, "requires a credential") || !strings.Contains(errOut, "--token-file") {
		t.Errorf("fleetctl start without a credential: exit %d, stderr %q", code, errOut)
	}
	// With --token-file it runs: the cluster works, so the refused units
	// would have run by now had they been stored.
	tokenFile := filepath.Join(c.Machines[0].DataDir, "admin-token")
	out, errOut, code := fleetctlAs(t.Context(), base, nil, "--token-file", tokenFile, "start", unit)
	if code != 0 {
		t.Fatalf("fleetctl --token-file start: exit %d\n%s%s", code, out, errOut)
	}
	c.AwaitActive(30*time.Second, "hello.service")
	if files := c.MustFleetctl("list-unit-files", "--no-legend", "--fields", "unit"); strings.TrimSpace(files) != "hello.service" {
		t.Errorf("units stored: %q", files)
	}
	if code, body := rawCall(t, "GET", base+"/fleet/v1/kv/anon/x", "", "", ""); code != 404 {
		t.Errorf("kv key after a refused write: %d %s", code, body)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("a refused unit ran: %v", err)
	}
}

// apiFleetd is one fleetd process with a TCP and a unix-socket API
// address, started under umask 000, its socket in a directory everybody
// may traverse.
type apiFleetd struct {
	tcp, sock, dataDir string
	log                *syncWriter
}

func startAPIFleetd(t *testing.T) *apiFleetd {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is 0700: let other users reach the socket's own
	// permission check.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	f := &apiFleetd{tcp: freePort(t), sock: filepath.Join(dir, "run", "fleet.sock"), dataDir: filepath.Join(dir, "data")}
	old := syscall.Umask(0)
	cmd := exec.Command(fleetdBin, "--data-dir", f.dataDir, "--machine-id", hex.EncodeToString(id),
		"--public-ip", "127.0.0.1", "--api-addr", f.tcp+",unix://"+f.sock,
		"--etcd-listen-client", "http://"+freePort(t), "--etcd-listen-peer", "http://"+freePort(t))
	log, done := startFleetdProcess(t, cmd, "fleetd (umask 000)", nil)
	syscall.Umask(old)
	f.log = log
	awaitFile(t, filepath.Join(f.dataDir, "admin-token"), done, log)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := f.socketCall(t, "GET", "/fleet/v1/machines"); code == 200 && strings.Contains(body, hex.EncodeToString(id)) {
			return f
		}
		select {
		case <-done:
			t.Fatalf("fleetd exited:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("fleetd did not answer on its socket:\n%s", log)
	return nil
}

// socketCall sends a request over the unix socket (as this process: root
// or the socket's owner); code 0 if it could not be sent.
func (f *apiFleetd) socketCall(t *testing.T, method, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", f.sock)
		},
	}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(method, "http://fleet"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// asNobody runs curl as user nobody (no supplementary groups) and returns
// its output (body, then the status code on the last line) and exit code.
func asNobody(t *testing.T, args ...string) (string, int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command("curl", append([]string{"-sS", "--max-time", "10", "-w", "\n%{http_code}"}, args...)...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl as nobody: %v", err)
	}
	return string(out), code
}

// A local user without privileges (nobody) may read over TCP loopback,
// cannot change anything there, and cannot even connect to the unix
// socket; the socket is not world-accessible under umask 000.
func TestSecurityAPINobody(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run curl as user nobody")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (Debian: apt-get install curl); skipping the test as user nobody")
	}
	f := startAPIFleetd(t)
	base := "http://" + f.tcp

	out, code := asNobody(t, base+"/fleet/v1/units")
	if code != 0 || !strings.HasSuffix(out, "\n200") {
		t.Errorf("nobody GET over TCP: exit %d\n%s", code, out)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	out, code = asNobody(t, "-X", "PUT", "-H", "Content-Type: application/json", "--data", markerUnit("nobody.service", marker), base+"/fleet/v1/units/nobody.service")
	if code != 0 || !strings.HasSuffix(out, "\n401") || !strings.Contains(out, "a credential is required to change the cluster") {
		t.Errorf("nobody PUT over TCP: exit %d\n%s", code, out)
	}
	out, code = asNobody(t, "-v", "-X", "PUT", "-H", "Content-Type: application/json", "--data", markerUnit("nobody.service", marker),
		"--unix-socket", f.sock, "http://fleet/fleet/v1/units/nobody.service")
	if code != 7 || !strings.Contains(strings.ToLower(out), "permission denied") {
		t.Errorf("nobody over the unix socket: curl exit %d (want 7: could not connect)\n%s", code, out)
	}
	// Root (the socket's owner) sees that nothing was stored.
	if code, body := f.socketCall(t, "GET", "/fleet/v1/units/nobody.service"); code != 404 {
		t.Errorf("nobody.service after the refusals: %d %s", code, body)
	}
	fi, err := os.Stat(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("socket mode %v: others may connect", fi.Mode().Perm())
	}
}

// The socket is 0600 (0660 with group fleet when that group exists),
// whatever the umask.
func TestSecurityAPISocketUmask(t *testing.T) {
	f := startAPIFleetd(t)
	fi, err := os.Stat(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	want := os.FileMode(0o600)
	if _, err := user.LookupGroup("fleet"); err == nil {
		want = 0o660
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != want {
		t.Errorf("socket %v under umask 000, want socket %v", fi.Mode(), want)
	}
	entries, _ := os.ReadDir(filepath.Dir(f.sock))
	if len(entries) != 1 {
		t.Errorf("the socket's directory holds %v", entries)
	}
}

// Only fleetd's own names are answered over TCP: a Host that is not
// (what a DNS-rebinding page sends) gets 421 naming api_allowed_hosts.
func TestSecurityAPIHostHeader(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{ExtraArgs: []string{"--api-allowed-hosts", "fleet.test"}})
	base := c.Machines[0].APIURL
	port := base[strings.LastIndex(base, ":")+1:]
	admin := adminTokenOf(t, c.Machines[0])
	for _, tc := range []struct {
		host, path, token string
		code              int
	}{
		{"127.0.0.1:" + port, "/fleet/v1/units", "", 200},
		{"localhost:" + port, "/fleet/v1/units", "", 200},
		{"LOCALHOST:" + port, "/ui/", "", 200},
		{"[::1]:" + port, "/fleet/v1/units", "", 200},
		{"fleet.test:" + port, "/fleet/v1/units", "", 200},
		{"attacker.example:" + port, "/fleet/v1/units", "", 421},
		{"attacker.example", "/fleet/v1/units", "", 421},
		{"attacker.example:" + port, "/fleet/v1/units", admin, 421},
		{"attacker.example:" + port, "/ui/", "", 421},
		{"attacker.example:" + port, "/metrics", "", 421},
		{"127.0.0.1.attacker.example:" + port, "/fleet/v1/units", "", 421},
	} {
		code, body := rawCall(t, "GET", base+tc.path, tc.host, tc.token, "")
		if code != tc.code {
			t.Errorf("Host %s %s: %d %s, want %d", tc.host, tc.path, code, body, tc.code)
			continue
		}
		if code == 421 {
			var env struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || env.Error.Code != 421 || !strings.Contains(env.Error.Message, "api_allowed_hosts") {
				t.Errorf("Host %s: body %s", tc.host, body)
			}
		}
	}
	// A refused Host changes nothing, even with the admin token.
	if code, body := rawCall(t, "PUT", base+"/fleet/v1/units/rebound.service", "attacker.example:"+port, admin, markerUnit("rebound.service", "/nonexistent")); code != 421 {
		t.Errorf("PUT with a foreign Host: %d %s", code, body)
	}
	if files := c.MustFleetctl("list-unit-files", "--no-legend"); strings.TrimSpace(files) != "" {
		t.Errorf("units stored: %q", files)
	}
}

// newBrowser starts a headless Chromium of its own (its own profile, so
// its own cookies) with extra flags.
func newBrowser(t *testing.T, ctx context.Context, chrome string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// Plain http to a non-local name must stay plain http.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
	)
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// browserPoll evaluates expr until it is true (retrying over navigations).
func browserPoll(t *testing.T, bctx context.Context, what, expr string) {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
	}
	t.Fatalf("waiting for %s: timed out (last error: %v)", what, lastErr)
}

// browserClick clicks an enabled element in one evaluation, retrying while
// the live page re-renders.
func browserClick(t *testing.T, bctx context.Context, what, sel string) {
	t.Helper()
	q, _ := json.Marshal(sel)
	expr := `(function(){var e=document.querySelector(` + string(q) + `);if(!e||e.disabled){return false;}e.click();return true;})()`
	browserPoll(t, bctx, what, expr)
}

// browserText is the text of the first element matching sel ("" if none).
func browserText(t *testing.T, bctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(function(){var e=document.querySelector(`+string(q)+`);return e ? e.textContent : "";})()`))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// A DNS-rebinding attack from a real browser: the attacker's page at
// http://attacker.example:<fleetd's port>/ is served by the attacker, then
// the name "rebinds" to 127.0.0.1, and the page's same-origin requests
// reach fleetd with Host attacker.example:<port>. An HTTP proxy plays the
// attacker's DNS (Chromium's --proxy-server): it serves the page at "/"
// and forwards everything else, Host unchanged, to fleetd. fleetd must
// refuse every request (421), and no unit may appear.
func TestSecurityAPIDNSRebinding(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("chromium is not installed (Debian: apt-get install chromium); skipping the DNS-rebinding browser test")
	}
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	fleetdURL, err := url.Parse(c.Machines[0].APIURL)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	unit, _ := json.Marshal(markerUnit("rebind.service", marker))
	page := `<!doctype html><title>cats</title><script>
window.__results = {};
(async function () {
  async function probe(name, path, opts) {
    try { var r = await fetch(path, opts); window.__results[name] = r.status + " " + (await r.text()); }
    catch (e) { window.__results[name] = "error " + e; }
  }
  await probe("get", "/fleet/v1/units", {});
  await probe("put", "/fleet/v1/units/rebind.service", {method: "PUT", headers: {"Content-Type": "application/json"}, body: ` + string(unit) + `});
  await probe("dashboard", "/ui/", {});
  await probe("metrics", "/metrics", {});
  window.__done = true;
})();
</script>`
	fleetd := httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(&url.URL{Scheme: "http", Host: fleetdURL.Host})
		pr.Out.Host = pr.In.Host // what the browser sent: attacker.example:<port>
	}}
	var mu sync.Mutex
	var proxied []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Hostname() != "attacker.example" {
			http.Error(w, "this proxy only knows attacker.example", http.StatusBadGateway)
			return
		}
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
			return
		}
		mu.Lock()
		proxied = append(proxied, r.Method+" "+r.URL.Path)
		mu.Unlock()
		fleetd.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bctx := newBrowser(t, ctx, chrome, chromedp.ProxyServer(proxy.URL))
	if err := chromedp.Do(bctx, chromedp.Navigate("http://attacker.example:"+fleetdURL.Port()+"/")); err != nil {
		t.Fatalf("open the attacker's page: %v", err)
	}
	browserPoll(t, bctx, "the page's requests", `window.__done === true`)
	raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(window.__results)`))
	if err != nil {
		t.Fatal(err)
	}
	var results map[string]string
	if err := json.Unmarshal([]byte(raw), &results); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"get", "put", "dashboard", "metrics"} {
		if got := results[name]; !strings.HasPrefix(got, "421 ") || !strings.Contains(got, "api_allowed_hosts") {
			t.Errorf("%s from the rebound page: %q, want fleetd's 421", name, got)
		}
	}
	mu.Lock()
	if len(proxied) < 4 {
		t.Errorf("requests that reached fleetd: %v", proxied)
	}
	mu.Unlock()
	if files := c.MustFleetctl("list-unit-files", "--no-legend"); strings.TrimSpace(files) != "" {
		t.Errorf("units stored: %q", files)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the attacker's unit ran: %v", err)
	}
}

var loginURLRe = regexp.MustCompile(`(?m)^(https?://\S+/ui/login\?code=\S+)$`)

// dashboardLoginURL runs `fleetctl dashboard` (in process, with the admin
// token) and returns the URL it printed.
func dashboardLoginURL(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	out := c.MustFleetctl("dashboard")
	m := loginURLRe.FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], c.Machines[0].APIURL+"/ui/login?code=") || !strings.Contains(out, "works once") {
		t.Fatalf("fleetctl dashboard printed:\n%s", out)
	}
	return m[1]
}

// The dashboard login in a real browser: the URL of `fleetctl dashboard`
// logs the browser in, Start then starts the unit; the URL does not work
// a second time; a browser without the session sees the dashboard
// read-only and its Stop is refused.
func TestSecurityAPIDashboardLogin(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("chromium is not installed (Debian: apt-get install chromium); skipping the dashboard login browser test")
	}
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	unit := writeUnit(t, t.TempDir(), "hello.service", helloUnit)
	c.MustFleetctl("submit", unit)
	login := dashboardLoginURL(t, c)
	base := c.Machines[0].APIURL
	row := `tr.unit[data-unit="hello.service"]`

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	admin := newBrowser(t, ctx, chrome)
	if err := chromedp.Do(admin, chromedp.Navigate(login)); err != nil {
		t.Fatalf("open the login URL: %v", err)
	}
	browserPoll(t, admin, "the dashboard after login", `location.pathname === "/ui/" && !!document.querySelector('`+row+`')`)
	if browserText(t, admin, "#readonly") != "" {
		t.Error("the logged-in dashboard says it is read-only")
	}
	browserClick(t, admin, "click Start", row+` button[data-action="start"]:not([disabled])`)
	c.AwaitActive(30*time.Second, "hello.service")

	other := newBrowser(t, ctx, chrome)
	if err := chromedp.Do(other, chromedp.Navigate(login)); err != nil {
		t.Fatalf("open the login URL again: %v", err)
	}
	browserPoll(t, other, "the refusal of a used login URL", `((document.getElementById("error")||{}).textContent||"").indexOf("Run `+"`fleetctl dashboard`"+` again") >= 0`)
	if err := chromedp.Do(other, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	browserPoll(t, other, "the read-only dashboard", `!!document.querySelector('`+row+`') && !!document.getElementById("readonly")`)
	browserClick(t, other, "click Stop without a session", row+` button[data-action="stop"]:not([disabled])`)
	browserPoll(t, other, "the refusal of Stop", `((document.getElementById("toast")||{}).textContent||"").indexOf("fleetctl dashboard") >= 0`)
	if out := c.MustFleetctl("list-unit-files", "--no-legend", "--fields", "unit,dstate"); !strings.Contains(out, "launched") {
		t.Errorf("the refused Stop changed the unit: %q", out)
	}
	if rows := c.AwaitActive(10*time.Second, "hello.service"); rows["hello.service"] == "" {
		t.Error("hello.service is not active any more")
	}
	// The session works for later pages too: Stop from the logged-in
	// browser.
	browserClick(t, admin, "click Stop with the session", row+` button[data-action="stop"]:not([disabled])`)
	c.Await("hello.service stopped", 30*time.Second, func() (bool, string) {
		out := c.MustFleetctl("list-unit-files", "--no-legend", "--fields", "unit,dstate")
		return strings.Contains(out, "loaded"), out
	})
}

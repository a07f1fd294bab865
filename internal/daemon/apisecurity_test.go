package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fleetd's defaults, in process: the unix socket is admin and private,
// loopback TCP callers may read but not change, the admin token works
// over TCP, foreign Host names are refused, and `fleetctl dashboard`'s
// login gives a browser the right to act on the dashboard.
func TestSecureDefaults(t *testing.T) {
	old := syscall.Umask(0)
	tcp := freeTCP(t, "127.0.0.1")
	sock := filepath.Join(t.TempDir(), "f.sock")
	f := runFleetd(t, "--api-addr", tcp+",unix://"+sock)
	syscall.Umask(old)
	base := "http://" + tcp
	hc := &http.Client{Timeout: 10 * time.Second}
	u := f.unixClient()

	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("socket under umask 000: %v %v", fi.Mode(), err)
	}
	if a := call(t, hc, "GET", base+"/fleet/v1/units", "", ""); a.code != 200 {
		t.Errorf("anonymous loopback GET: %d %s", a.code, a.body)
	}
	if a := call(t, hc, "GET", base+"/metrics", "", ""); a.code != 200 {
		t.Errorf("anonymous loopback /metrics: %d", a.code)
	}
	a := call(t, hc, "PUT", base+"/fleet/v1/units/anon.service", "", unitJSON("anon.service"))
	if a.code != 401 || !strings.Contains(a.body, "a credential is required to change the cluster") ||
		!strings.Contains(a.body, "unix://"+sock) || !strings.Contains(a.body, filepath.Join(f.dataDir, "admin-token")) {
		t.Errorf("anonymous loopback PUT: %d %s", a.code, a.body)
	}
	if a := call(t, hc, "PUT", base+"/fleet/v1/units/admin.service", f.adminToken(t), unitJSON("admin.service")); a.code != 201 {
		t.Errorf("admin token PUT: %d %s", a.code, a.body)
	}
	if a := call(t, u, "PUT", "http://sock/fleet/v1/units/sock.service", "", unitJSON("sock.service")); a.code != 201 {
		t.Errorf("unix socket PUT: %d %s", a.code, a.body)
	}
	for name, code := range map[string]int{"anon.service": 404, "admin.service": 200, "sock.service": 200} {
		if a := call(t, u, "GET", "http://sock/fleet/v1/units/"+name, "", ""); a.code != code {
			t.Errorf("unit %s: %d, want %d", name, a.code, code)
		}
	}

	// DNS rebinding: another name for 127.0.0.1 is refused.
	req, _ := http.NewRequest("GET", base+"/fleet/v1/units", nil)
	req.Host = "attacker.example:" + strings.Split(tcp, ":")[1]
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host attacker.example: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Dashboard login: the code comes over the socket, names the TCP
	// address and works once.
	a = call(t, u, "POST", "http://sock/fleet/v1/ui-login", "", "")
	var login struct {
		URL     string    `json:"url"`
		Expires time.Time `json:"expires"`
	}
	if a.code != 200 || json.Unmarshal([]byte(a.body), &login) != nil || !strings.HasPrefix(login.URL, base+"/ui/login?code=") {
		t.Fatalf("ui-login: %d %s", a.code, a.body)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	resp, err := browser.Get(login.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/ui/" {
		t.Fatalf("login: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if resp, err := browser.Get(login.URL); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("second use of the code: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	stop := func(hc *http.Client) int {
		page := call(t, hc, "GET", base+"/ui/", "", "")
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no CSRF token:\n%s", page.body)
		}
		req, _ := http.NewRequest("POST", base+"/ui/units/admin.service/stop", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("X-Fleet-UI", "1")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	anonJar, _ := cookiejar.New(nil)
	if code := stop(&http.Client{Timeout: 10 * time.Second, Jar: anonJar}); code != 401 {
		t.Errorf("dashboard stop without a session: %d", code)
	}
	if code := stop(browser); code != 200 {
		t.Errorf("dashboard stop with the session: %d", code)
	}
	if a := call(t, u, "GET", "http://sock/fleet/v1/units/admin.service", "", ""); !strings.Contains(a.body, `"desiredState":"loaded"`) {
		t.Errorf("after the dashboard's stop: %s", a.body)
	}
	// The session is no credential for the API itself.
	if a := call(t, browser, "PUT", base+"/fleet/v1/units/cookie.service", "", unitJSON("cookie.service")); a.code != 401 {
		t.Errorf("API PUT with the session cookie: %d %s", a.code, a.body)
	}
}

// api_trust_loopback=true restores loopback admin, with a warning.
func TestTrustLoopback(t *testing.T) {
	tcp := freeTCP(t, "127.0.0.1")
	f := runFleetd(t, "--api-addr", tcp+",unix://"+filepath.Join(t.TempDir(), "f.sock"), "--api-trust-loopback")
	hc := &http.Client{Timeout: 10 * time.Second}
	if a := call(t, hc, "PUT", "http://"+tcp+"/fleet/v1/units/lo.service", "", unitJSON("lo.service")); a.code != 201 {
		t.Errorf("loopback PUT with api_trust_loopback: %d %s", a.code, a.body)
	}
	if !strings.Contains(f.log.String(), "api_trust_loopback=true") {
		t.Errorf("no warning in the log:\n%s", f.log)
	}
}

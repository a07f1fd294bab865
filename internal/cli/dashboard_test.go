package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// authServer answers GET /fleet/v1/machines and POST /fleet/v1/ui-login
// to the bearer token want (401 without one, as fleetd does) and records
// the Authorization headers it got.
type authServer struct {
	*httptest.Server
	mu    sync.Mutex
	authz []string
}

func newAuthServer(t *testing.T, want string) *authServer {
	s := &authServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.authz = append(s.authz, r.Header.Get("Authorization"))
		s.mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Bearer " + want:
		case "":
			fwriteErr(w, 401, "a credential is required")
			return
		default:
			fwriteErr(w, 401, "invalid credential: the token is not accepted by this fleetd")
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /fleet/v1/machines":
			w.Write([]byte(`{"machines":[{"id":"` + m1 + `","primaryIP":"10.0.0.1"}]}`))
		case "POST /fleet/v1/ui-login":
			json.NewEncoder(w).Encode(map[string]any{
				"url":            "http://127.0.0.1:49153/ui/login?code=abc",
				"expires":        time.Now().Add(2 * time.Minute).UTC(),
				"sessionSeconds": 43200,
			})
		default:
			fwriteErr(w, 404, "")
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authz) == 0 {
		return "<none>"
	}
	return s.authz[len(s.authz)-1]
}

func writeTokenFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// --token-file (FLEETCTL_TOKEN_FILE) sends the file's token; the command
// line wins over the environment, --token over --token-file; a file that
// others may read gets a warning; a 401 says how to authenticate.
func TestTokenFile(t *testing.T) {
	const good, other = "good-token-0123456789", "other-token-0123456789"
	srv := newAuthServer(t, good)
	private := writeTokenFile(t, good+"\n", 0o600)
	shared := writeTokenFile(t, good, 0o644)
	wrong := writeTokenFile(t, other, 0o600)
	ep := "FLEETCTL_ENDPOINT=" + srv.URL
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		sent  string
		warn  bool
		inErr string
	}{
		{name: "flag", args: []string{"--token-file", private}, sent: "Bearer " + good},
		{name: "env", env: []string{"FLEETCTL_TOKEN_FILE=" + private}, sent: "Bearer " + good},
		{name: "group-readable file", args: []string{"--token-file", shared}, sent: "Bearer " + good, warn: true},
		{name: "--token beats --token-file", args: []string{"--token", good, "--token-file", wrong}, sent: "Bearer " + good},
		{name: "FLEETCTL_TOKEN beats FLEETCTL_TOKEN_FILE", env: []string{"FLEETCTL_TOKEN=" + good, "FLEETCTL_TOKEN_FILE=" + wrong}, sent: "Bearer " + good},
		{name: "--token-file beats FLEETCTL_TOKEN", env: []string{"FLEETCTL_TOKEN=" + other}, args: []string{"--token-file", private}, sent: "Bearer " + good},
		{name: "--token beats FLEETCTL_TOKEN_FILE", env: []string{"FLEETCTL_TOKEN_FILE=" + wrong}, args: []string{"--token", good}, sent: "Bearer " + good},
		{name: "missing file", args: []string{"--token-file", filepath.Join(t.TempDir(), "nope")}, code: 1, sent: "<none>", inErr: "--token-file"},
		{name: "empty file", args: []string{"--token-file", writeTokenFile(t, "\n", 0o600)}, code: 1, sent: "<none>", inErr: "is empty"},
		{name: "two words", args: []string{"--token-file", writeTokenFile(t, "admin "+good, 0o600)}, code: 1, sent: "<none>", inErr: "token alone"},
		{name: "no credential", code: 1, sent: "",
			inErr: "requires a credential: pass --token, --token-file or FLEETCTL_TOKEN (fleetd's admin token is in <data_dir>/admin-token"},
		{name: "wrong token", args: []string{"--token-file", wrong}, code: 1, sent: "Bearer " + other, inErr: "refused the credential: invalid credential"},
		{name: "wrong token: how to get one", args: []string{"--token-file", wrong}, code: 1, sent: "Bearer " + other, inErr: "admin-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.mu.Lock()
			srv.authz = nil
			srv.mu.Unlock()
			r := runCLI(t, context.Background(), append([]string{ep}, tc.env...), append(tc.args, "list-machines", "--no-legend")...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if got := srv.last(); got != tc.sent {
				t.Errorf("sent %q, want %q", got, tc.sent)
			}
			if warned := strings.Contains(r.stderr, "chmod 600"); warned != tc.warn {
				t.Errorf("warning %v, want %v: %q", warned, tc.warn, r.stderr)
			}
			if tc.inErr != "" && !strings.Contains(r.stderr, tc.inErr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.inErr)
			}
		})
	}
}

// fleetctl dashboard prints the one-time URL and how long it works;
// --open runs $BROWSER with it, or says that it could not.
func TestDashboardCommand(t *testing.T) {
	const tok = "dash-token-0123456789"
	srv := newAuthServer(t, tok)
	env := []string{"FLEETCTL_ENDPOINT=" + srv.URL, "FLEETCTL_TOKEN=" + tok}
	const url = "http://127.0.0.1:49153/ui/login?code=abc"

	r := runCLI(t, context.Background(), env, "dashboard")
	if r.code != 0 || !strings.Contains(r.stdout, "\n"+url+"\n") || !strings.Contains(r.stdout, "works once") ||
		!strings.Contains(r.stdout, "for 12h0m0s") || !strings.Contains(r.stdout, "within 2m0s") && !strings.Contains(r.stdout, "within 1m59s") {
		t.Fatalf("dashboard: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// --open with $BROWSER ("%s" placeholder or appended URL).
	dir := t.TempDir()
	script := filepath.Join(dir, "browser")
	got := filepath.Join(dir, "opened")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+got+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, browser := range []string{script, "fleet-no-such-browser:" + script + " --new-window %s"} {
		os.Remove(got)
		r = runCLI(t, context.Background(), append(env, "BROWSER="+browser), "dashboard", "--open")
		b, _ := os.ReadFile(got)
		if r.code != 0 || !strings.Contains(r.stdout, "Opened it in a browser") || !strings.Contains(string(b), url) {
			t.Errorf("BROWSER=%s: exit %d, browser got %q\n%s%s", browser, r.code, b, r.stdout, r.stderr)
		}
	}
	if b, _ := os.ReadFile(got); !strings.HasPrefix(string(b), "--new-window "+url) {
		t.Errorf("placeholder: browser got %q", b)
	}

	// No browser at all: the URL is printed and fleetctl says so.
	t.Setenv("PATH", t.TempDir())
	r = runCLI(t, context.Background(), env, "dashboard", "--open")
	if r.code != 0 || !strings.Contains(r.stdout, url) || !strings.Contains(r.stderr, "Could not open a browser") || !strings.Contains(r.stderr, "xdg-open: not found") {
		t.Errorf("no browser: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Without the admin credential fleetd refuses; the message says how.
	r = runCLI(t, context.Background(), []string{"FLEETCTL_ENDPOINT=" + srv.URL}, "dashboard")
	if r.code != 1 || !strings.Contains(r.stderr, "requires a credential") || !strings.Contains(r.stderr, "--token-file") {
		t.Errorf("no credential: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, context.Background(), env, "dashboard", "extra"); r.code != 1 {
		t.Errorf("extra argument: exit %d", r.code)
	}
}

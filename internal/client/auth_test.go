package client

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestTokenAndUnauthorizedMessages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good-token":
			if r.Method != http.MethodGet {
				writeErr(w, 403, "permission denied: read-only credential cannot "+r.Method+" "+r.URL.Path)
				return
			}
			writeRaw(w, 200, `{}`)
		case "":
			writeErr(w, 401, "a credential is required")
		default:
			writeErr(w, 401, "invalid credential")
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		token, hint string
		code        int
		want        string
	}{
		{"", "pass --token or FLEETCTL_TOKEN", 401, "googleapi: Error 401: fleetd at " + srv.URL + " requires a credential: pass --token or FLEETCTL_TOKEN"},
		{"", "", 401, "fleetd at " + srv.URL + " requires a credential"},
		{"bad-token", "x", 401, "fleetd at " + srv.URL + " refused the credential: invalid credential"},
		{"good-token", "", 0, ""},
	} {
		c, err := New(srv.URL, Options{Token: tc.token, CredentialHint: tc.hint})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Units(t.Context())
		if tc.code == 0 {
			if err != nil {
				t.Errorf("token %q: %v", tc.token, err)
			}
			continue
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %q: %v, want %d %q", tc.token, err, tc.code, tc.want)
		}
	}
	c, _ := New(srv.URL, Options{Token: "good-token"})
	err := c.DestroyUnit(t.Context(), "x.service")
	if err == nil || !strings.Contains(err.Error(), "googleapi: Error 403: permission denied: read-only credential cannot DELETE /fleet/v1/units/x.service") {
		t.Errorf("403: %v", err)
	}
}

// A unix socket that may not be opened is explained, with the hint.
func TestSocketPermissionDenied(t *testing.T) {
	c, err := New("unix:///run/fleet.sock", Options{CredentialHint: "pass --token"})
	if err != nil {
		t.Fatal(err)
	}
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	err = c.connectError(denied)
	if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "only the owner and the group of /run/fleet.sock may use it") ||
		!strings.Contains(err.Error(), "; or pass --token") {
		t.Errorf("EACCES: %v", err)
	}
	other := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}
	if got := c.connectError(other); got != error(other) {
		t.Errorf("ENOENT changed: %v", got)
	}
	tcp, _ := New("http://127.0.0.1:1", Options{})
	if got := tcp.connectError(denied); got != error(denied) {
		t.Errorf("TCP endpoint: %v", got)
	}
}

func TestDashboardLogin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/fleet/v1/ui-login" || r.Header.Get("Authorization") != "Bearer tok" {
			writeErr(w, 401, "a credential is required")
			return
		}
		writeRaw(w, 200, `{"url":"http://h:1/ui/login?code=x","expires":"2030-01-02T03:04:05Z","sessionSeconds":43200}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, Options{Token: "tok"})
	l, err := c.DashboardLogin(t.Context())
	if err != nil || l.URL != "http://h:1/ui/login?code=x" || l.Expires.Year() != 2030 || l.SessionSeconds != 43200 {
		t.Fatalf("%+v %v", l, err)
	}
	anon, _ := New(srv.URL, Options{})
	if _, err := anon.DashboardLogin(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without token: %v", err)
	}
}

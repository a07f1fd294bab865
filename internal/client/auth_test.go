package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

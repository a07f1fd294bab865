package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/fleetd/fleet/internal/auth"
)

// UILogin is the answer of POST /fleet/v1/ui-login.
type UILogin struct {
	// URL opens the dashboard logged in; it works once.
	URL string `json:"url"`
	// Expires is when the URL stops working.
	Expires time.Time `json:"expires"`
	// SessionSeconds is how long the browser stays logged in.
	SessionSeconds int `json:"sessionSeconds"`
}

// uiLogin issues a one-time dashboard login URL (admin only: the
// middleware refuses everybody else a POST).
func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	if s.sessions == nil || s.dashboardURL == "" {
		writeError(w, http.StatusNotFound, "this fleetd serves no dashboard login: it has no TCP API address (api_addr) for a browser to open")
		return
	}
	code, exp, err := s.sessions.NewCode()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	id, _ := auth.FromContext(r.Context())
	s.log.Info("api: dashboard login code issued", "via", id.Via, "name", id.Name, "remote", r.RemoteAddr, "expires", exp.UTC().Format(time.RFC3339))
	writeJSON(w, http.StatusOK, UILogin{
		URL:            s.dashboardURL + auth.LoginPath + "?code=" + url.QueryEscape(code),
		Expires:        exp.UTC(),
		SessionSeconds: int(auth.SessionTTL / time.Second),
	})
}

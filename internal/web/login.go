package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/auth"
)

// isPublic reports whether r is for a page that needs no credential: the
// login page (the code is the credential) and the static files.
func isPublic(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == auth.LoginPath || strings.HasPrefix(r.URL.Path, "/ui/static/")
}

// login exchanges a one-time code (from POST /fleet/v1/ui-login) for a
// session cookie and redirects to the dashboard.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	if h.cfg.Sessions == nil {
		h.fail(w, r, http.StatusNotFound, "this fleetd has no dashboard login")
		return
	}
	session, exp, err := h.cfg.Sessions.Redeem(r.URL.Query().Get("code"))
	if err != nil {
		h.log.Warn("web: dashboard login refused", "remote", r.RemoteAddr, "err", err)
		h.fail(w, r, http.StatusForbidden, "This login link is not valid: it was used already, has expired (it is valid for "+
			auth.LoginCodeTTL.String()+"), or was made by another fleetd. Run `fleetctl dashboard` again for a new one.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: auth.SessionCookie, Value: session, Path: "/",
		Expires: exp, MaxAge: int(auth.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	h.log.Info("web: dashboard login", "remote", r.RemoteAddr, "until", exp.UTC().Format(time.RFC3339))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

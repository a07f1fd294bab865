package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetd/fleet/internal/auth"
)

// defaultCredentialHint ends 401 messages when Config.CredentialHint is
// empty.
const defaultCredentialHint = "send Authorization: Bearer <token> or a client certificate"

// dashboardHint ends 401 messages on dashboard paths.
const dashboardHint = "log in to the dashboard with `fleetctl dashboard` (run as root or group fleet on a fleet machine, or with the admin token): it prints a one-time login URL"

// checkHost refuses a TCP request whose Host is not a name of this fleetd
// (Config.Hosts): a page whose name was rebound to this machine's address
// must not reach the API from a browser. Unix-socket requests carry no
// meaningful Host and are not checked.
func (s *Server) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if s.hosts == nil || auth.IsUnixSocket(r) || s.hosts.Allowed(r.Host) {
		return true
	}
	s.log.Warn("api: request for a host name that is not this fleetd's refused (DNS rebinding?)",
		"host", r.Host, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf(
		"host %q is not a name of this fleetd (refused: DNS rebinding protection); "+
			"if it is the name you reach fleetd by, add it to api_allowed_hosts", r.Host))
	return false
}

// isPublic reports whether r may be served without a credential
// (Config.PublicPaths: GET and HEAD only).
func (s *Server) isPublic(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range s.public {
		if r.URL.Path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(r.URL.Path, p)) {
			return true
		}
	}
	return false
}

// authorize applies Config.Auth to r and returns r with the caller's
// identity in its context (auth.NewContext). On refusal it has answered:
// 401 with fleet's envelope and a WWW-Authenticate challenge when the
// caller has no valid credential, or is anonymous and tries to change
// something; 403 when a read-only credential uses a mutating method.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.auth == nil {
		return r, true
	}
	id, err := s.auth.Authenticate(r)
	if err != nil {
		msg := "a credential is required: " + s.credentialHint(r)
		if errors.Is(err, auth.ErrInvalidCredential) {
			msg = "invalid credential: the token is not accepted by this fleetd"
		}
		s.log.Debug("api: unauthenticated request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		s.unauthorized(w, r, msg)
		return nil, false
	}
	if auth.IsMutating(r.Method) && id.Role < auth.RoleAdmin {
		if id.Anonymous() {
			s.log.Debug("api: anonymous change refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			s.unauthorized(w, r, "a credential is required to change the cluster: "+s.credentialHint(r))
			return nil, false
		}
		s.log.Debug("api: read-only caller refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "via", id.Via)
		writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: read-only credential cannot %s %s", r.Method, r.URL.Path))
		return nil, false
	}
	return r.WithContext(auth.NewContext(r.Context(), id)), true
}

// unauthorized answers 401 with msg and the challenges: Bearer always;
// Basic too for a browser navigating the dashboard, so that it asks for a
// token as password (not for the dashboard's own fetches, where a
// password prompt would only be in the way).
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Add("WWW-Authenticate", `Bearer realm="fleet"`)
	if auth.IsDashboardPath(r.URL.Path) && !auth.IsMutating(r.Method) && r.Header.Get("X-Fleet-UI") == "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="fleet", charset="UTF-8"`)
	}
	writeError(w, http.StatusUnauthorized, msg)
}

// credentialHint says how to authenticate to what r asked for.
func (s *Server) credentialHint(r *http.Request) string {
	if auth.IsDashboardPath(r.URL.Path) {
		return dashboardHint
	}
	if s.hint != "" {
		return s.hint
	}
	return defaultCredentialHint
}

// authorizePeer adds the peer credential to a request to another fleetd.
func (s *Server) authorizePeer(req *http.Request) {
	if s.peerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.peerToken)
	}
}

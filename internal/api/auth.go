package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetd/fleet/internal/auth"
)

// authorize applies Config.Auth to r. On refusal it has answered: 401 with
// fleet's envelope and a WWW-Authenticate challenge when the caller has no
// valid credential, 403 when a read-only caller uses a mutating method.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.auth == nil {
		return true
	}
	id, err := s.auth.Authenticate(r)
	if err != nil {
		w.Header().Add("WWW-Authenticate", `Bearer realm="fleet"`)
		if strings.HasPrefix(r.URL.Path, "/ui") {
			// Lets a browser ask for the token (as the password).
			w.Header().Add("WWW-Authenticate", `Basic realm="fleet", charset="UTF-8"`)
		}
		msg := err.Error()
		if errors.Is(err, auth.ErrInvalidCredential) {
			msg = "invalid credential: the token is not accepted by this fleetd"
		}
		s.log.Debug("api: unauthenticated request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusUnauthorized, msg)
		return false
	}
	if auth.IsMutating(r.Method) && id.Role < auth.RoleAdmin {
		s.log.Debug("api: read-only caller refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "via", id.Via)
		writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: read-only credential cannot %s %s", r.Method, r.URL.Path))
		return false
	}
	return true
}

// authorizePeer adds the peer credential to a request to another fleetd.
func (s *Server) authorizePeer(req *http.Request) {
	if s.peerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.peerToken)
	}
}

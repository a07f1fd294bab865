package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/fleetd/fleet/internal/auth"
)

// Authorizer decides who may look at the dashboard and who may change the
// cluster from it. The security work plugs its credential check in here.
type Authorizer interface {
	// CanRead reports whether r may see pages, fragments and streams.
	CanRead(r *http.Request) bool
	// CanAdmin reports whether r may start, stop or destroy units.
	CanAdmin(r *http.Request) bool
}

// LoopbackAuthorizer is the default: everyone may read (the API answers
// the same data to anyone), only callers on a loopback address or a unix
// socket may change things.
type LoopbackAuthorizer struct{}

// CanRead always allows.
func (LoopbackAuthorizer) CanRead(*http.Request) bool { return true }

// CanAdmin allows loopback and unix-socket callers.
func (LoopbackAuthorizer) CanAdmin(r *http.Request) bool { return auth.IsLocal(r.RemoteAddr) }

const (
	csrfCookie = "fleet_csrf"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	tokenBytes = 32
)

// csrfToken returns the caller's CSRF token, setting a fresh cookie when
// it has none (or a malformed one).
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: tok, Path: "/ui/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return tok
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

// checkCSRF explains why a POST is refused ("" if it is acceptable). The
// request must come from one of fleetd's own pages: Sec-Fetch-Site, when
// the browser sends it, is same-origin; the Origin (or, without it, the
// Referer) names a host on the allowlist (never compared with the
// request's own Host, which a DNS-rebinding page chooses), with the
// request's scheme and port; and the form or X-CSRF-Token header repeats
// the CSRF cookie.
//
// The port is compared with the Host header's: the browser sets both from
// the URL it talks to, so they differ only for a page of another origin
// on an allowed host (another local web application on another port),
// which may not act here. The Host itself is checked against the same
// allowlist by the API before the dashboard sees the request.
func checkCSRF(r *http.Request, hosts auth.HostAllowlist) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return "cross-site request refused (Sec-Fetch-Site: " + site + ")"
	}
	if o := r.Header.Get("Origin"); o != "" {
		if !sameOrigin(o, r, hosts) {
			return "cross-origin request refused (Origin " + o + ")"
		}
	} else if ref := r.Header.Get("Referer"); ref != "" {
		if !sameOrigin(ref, r, hosts) {
			return "cross-origin request refused (Referer)"
		}
	} else {
		return "request without Origin or Referer refused"
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !validToken(c.Value) {
		return "missing CSRF cookie: reload the page"
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) != 1 {
		return "invalid CSRF token: reload the page"
	}
	return ""
}

// sameOrigin reports whether origin (an Origin or Referer value) is one of
// fleetd's own pages for r: the request's scheme, a host on the
// allowlist, the port of r's Host.
func sameOrigin(origin string, r *http.Request, hosts auth.HostAllowlist) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) || !hosts.Allowed(u.Host) {
		return false
	}
	return portOf(u.Host, scheme) == portOf(r.Host, scheme)
}

// portOf is the port of a host[:port] value, the scheme's default if none.
func portOf(hostport, scheme string) string {
	if _, port, err := net.SplitHostPort(hostport); err == nil && port != "" {
		return port
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}

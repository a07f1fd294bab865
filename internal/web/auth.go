package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
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
func (LoopbackAuthorizer) CanAdmin(r *http.Request) bool { return IsLocal(r.RemoteAddr) }

// IsLocal reports whether a RemoteAddr is a loopback address or a unix
// socket peer ("@" or empty).
func IsLocal(remoteAddr string) bool {
	if remoteAddr == "" || remoteAddr == "@" {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

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

// checkCSRF explains why a POST is refused ("" if it is acceptable).
func checkCSRF(r *http.Request) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return "cross-site request refused (Sec-Fetch-Site: " + site + ")"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self := scheme + "://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		if !strings.EqualFold(o, self) {
			return "cross-origin request refused (Origin " + o + ")"
		}
	} else if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || !strings.EqualFold(u.Scheme+"://"+u.Host, self) {
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

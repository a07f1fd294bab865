// Package auth decides who is calling fleetd's API and what they may do.
//
// Contract:
//  1. Roles: RoleAdmin may do anything; RoleReadOnly may only read (GET,
//     HEAD, OPTIONS); RoleNone is refused.
//  2. A request that carries an Authorization header is judged by it alone,
//     whatever its source: "Bearer <token>" or "Basic <base64(user:token)>"
//     (the user is ignored; browsers can send it for the dashboard). The
//     token is compared in constant time with every configured token, then
//     given to Config.Lookup (the cluster's registered tokens); an unknown
//     token is ErrInvalidCredential.
//  3. Otherwise a client certificate verified against api_tls_client_ca
//     (r.TLS.VerifiedChains) gives CertRole of the leaf.
//  4. Otherwise a unix-socket caller is admin: the socket's mode and group
//     decide who may connect (the trusted local channel).
//  5. Otherwise, on dashboard paths (/ui), a valid dashboard session cookie
//     (SessionCookie, see Sessions) is admin.
//  6. Otherwise a loopback TCP caller is admin when TrustLoopback is set
//     (api_trust_loopback, off by default: every local user would be root).
//  7. Otherwise the caller is anonymous: read-only when AnonymousRead allows
//     it for the caller's address (auto: loopback only), else
//     ErrNoCredential. An anonymous caller never changes anything.
//  8. An identity put in the request's context by NewContext (the API's
//     middleware, once it has authenticated a request) is taken as is, so
//     handlers that forward a request in process do not authenticate twice.
//  9. Tokens files hold one "<role> <token>" or "<token> <role>" per line
//     (roles admin, readonly); blank lines and '#' comments are skipped;
//     tokens are at least MinTokenLength bytes and unique.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// Role is what a caller may do.
type Role int

// Roles, weakest first.
const (
	RoleNone Role = iota
	RoleReadOnly
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleReadOnly:
		return "readonly"
	}
	return "none"
}

// ParseRole parses "admin" or "readonly" ("read-only" and "ro" are
// accepted too).
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "admin":
		return RoleAdmin, nil
	case "readonly", "read-only", "ro":
		return RoleReadOnly, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q: want admin or readonly", s)
}

// MinTokenLength is the shortest token a tokens file may hold.
const MinTokenLength = 16

// Errors of Authenticate.
var (
	// ErrNoCredential: the caller sent no credential and may not read
	// anonymously.
	ErrNoCredential = errors.New("a credential is required: send Authorization: Bearer <token> or a client certificate")
	// ErrInvalidCredential: the token is not known.
	ErrInvalidCredential = errors.New("invalid credential")
)

type tokenEntry struct {
	token []byte
	role  Role
}

// Tokens is a set of access tokens with their roles.
type Tokens struct {
	entries []tokenEntry
}

// ParseTokens parses a tokens file (see the package contract). source names
// it in errors.
func ParseTokens(source string, data []byte) (*Tokens, error) {
	t := &Tokens{}
	seen := map[string]int{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"<role> <token>\"", source, n+1)
		}
		role, err := ParseRole(f[0])
		tok := f[1]
		if err != nil {
			if r2, err2 := ParseRole(f[1]); err2 == nil {
				role, tok, err = r2, f[0], nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, n+1, err)
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("%s:%d: token too short: at least %d characters", source, n+1, MinTokenLength)
		}
		if prev, dup := seen[tok]; dup {
			return nil, fmt.Errorf("%s:%d: token repeats the one on line %d", source, n+1, prev)
		}
		seen[tok] = n + 1
		t.entries = append(t.entries, tokenEntry{token: []byte(tok), role: role})
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("%s: no tokens", source)
	}
	return t, nil
}

// LoadTokens reads and parses a tokens file. A file that group or others
// may read yields a warning.
func LoadTokens(path string) (*Tokens, []string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens file: %w", err)
	}
	var warns []string
	if fi.Mode().Perm()&0o077 != 0 {
		warns = append(warns, fmt.Sprintf("tokens file %s has mode %v: it should be readable by its owner only (chmod 600)", path, fi.Mode().Perm()))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens file: %w", err)
	}
	t, err := ParseTokens(path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens file: %w", err)
	}
	return t, warns, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Lookup returns the role of tok (RoleNone if unknown). Every token is
// compared, in constant time, whatever matches.
func (t *Tokens) Lookup(tok string) Role {
	if t == nil || tok == "" {
		return RoleNone
	}
	got := RoleNone
	b := []byte(tok)
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(b, e.token) == 1 {
			got = e.role
		}
	}
	return got
}

// First returns the first token with role, "" if none.
func (t *Tokens) First(role Role) string {
	if t == nil {
		return ""
	}
	for _, e := range t.entries {
		if e.role == role {
			return string(e.token)
		}
	}
	return ""
}

// CertRole maps a verified client certificate to a role: an
// OrganizationalUnit "admin" gives admin, "readonly" (or "read-only")
// readonly; without either, a CommonName of "admin" or starting with
// "admin." / "admin-" gives admin; anything else is readonly.
func CertRole(c *x509.Certificate) Role {
	if c == nil {
		return RoleNone
	}
	role := RoleNone
	for _, ou := range c.Subject.OrganizationalUnit {
		if r, err := ParseRole(ou); err == nil && r > role {
			role = r
		}
	}
	if role != RoleNone {
		return role
	}
	cn := strings.ToLower(c.Subject.CommonName)
	if cn == "admin" || strings.HasPrefix(cn, "admin.") || strings.HasPrefix(cn, "admin-") {
		return RoleAdmin
	}
	return RoleReadOnly
}

// HashToken is the hex SHA-256 of a token (lower case): what the cluster
// registers instead of the token itself.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// AnonymousRead says who may read without a credential (api_anonymous_read).
type AnonymousRead int

// AnonymousRead values.
const (
	// AnonymousReadLoopback ("auto", the default): loopback TCP callers.
	AnonymousReadLoopback AnonymousRead = iota
	// AnonymousReadAlways ("true"): every TCP caller.
	AnonymousReadAlways
	// AnonymousReadNever ("false"): nobody.
	AnonymousReadNever
)

// ParseAnonymousRead parses api_anonymous_read: auto, true or false.
func ParseAnonymousRead(s string) (AnonymousRead, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return AnonymousReadLoopback, nil
	case "true":
		return AnonymousReadAlways, nil
	case "false":
		return AnonymousReadNever, nil
	}
	return AnonymousReadNever, fmt.Errorf("api_anonymous_read: invalid value %q: want auto, true or false", s)
}

// Ways a caller was identified (Identity.Via).
const (
	ViaToken     = "token"
	ViaCert      = "cert"
	ViaSocket    = "socket"
	ViaSession   = "session"
	ViaLoopback  = "loopback"
	ViaAnonymous = "anonymous"
)

// Policy authenticates requests.
type Policy struct {
	tokens        *Tokens
	lookup        func(ctx context.Context, token string) Role
	sessions      *Sessions
	trustLoopback bool
	anonymous     AnonymousRead
}

// Config configures a Policy.
type Config struct {
	// Tokens are the accepted access tokens (may be nil).
	Tokens *Tokens
	// Lookup, when set, is asked (with the request's context) about a
	// token that is not in Tokens; RoleNone means unknown. fleetd answers
	// from the hashes of the cluster's registered tokens (HashToken).
	Lookup func(ctx context.Context, token string) Role
	// Sessions holds the dashboard's login sessions (may be nil).
	Sessions *Sessions
	// TrustLoopback makes loopback TCP callers without a credential admin
	// (api_trust_loopback; unsafe: every local user becomes root).
	TrustLoopback bool
	// AnonymousRead says which TCP callers without a credential may read.
	AnonymousRead AnonymousRead
}

// New returns a Policy.
func New(cfg Config) *Policy {
	return &Policy{
		tokens: cfg.Tokens, lookup: cfg.Lookup, sessions: cfg.Sessions,
		trustLoopback: cfg.TrustLoopback, anonymous: cfg.AnonymousRead,
	}
}

// Identity is an authenticated caller.
type Identity struct {
	Role Role
	// Via is how (the Via* constants).
	Via string
	// Name is the certificate's CommonName (Via "cert").
	Name string
}

// Anonymous reports whether the caller gave no credential at all.
func (id Identity) Anonymous() bool { return id.Via == ViaAnonymous }

type identityKey struct{}

// NewContext returns ctx carrying id: Authenticate of a request with that
// context returns id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity NewContext put in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Authenticate tells who r comes from (see the package contract).
func (p *Policy) Authenticate(r *http.Request) (Identity, error) {
	if id, ok := FromContext(r.Context()); ok {
		return id, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		return p.bearer(r.Context(), h)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		return Identity{Role: CertRole(leaf), Via: ViaCert, Name: leaf.Subject.CommonName}, nil
	}
	if IsUnixSocket(r) {
		return Identity{Role: RoleAdmin, Via: ViaSocket}, nil
	}
	if p.validSession(r) {
		return Identity{Role: RoleAdmin, Via: ViaSession}, nil
	}
	loopback := IsLoopback(r.RemoteAddr)
	if p.trustLoopback && loopback {
		return Identity{Role: RoleAdmin, Via: ViaLoopback}, nil
	}
	if p.anonymous == AnonymousReadAlways || (p.anonymous == AnonymousReadLoopback && loopback) {
		return Identity{Role: RoleReadOnly, Via: ViaAnonymous}, nil
	}
	return Identity{}, ErrNoCredential
}

// bearer judges an Authorization header.
func (p *Policy) bearer(ctx context.Context, header string) (Identity, error) {
	tok, ok := tokenFromHeader(header)
	if !ok {
		return Identity{}, ErrInvalidCredential
	}
	role := p.TokenRole(ctx, tok)
	if role == RoleNone {
		return Identity{}, ErrInvalidCredential
	}
	return Identity{Role: role, Via: ViaToken}, nil
}

// TokenRole is the role of an access token, as Authenticate judges a
// bearer token: Config.Tokens, then Config.Lookup; RoleNone if neither
// knows it.
func (p *Policy) TokenRole(ctx context.Context, tok string) Role {
	role := p.tokens.Lookup(tok)
	if role == RoleNone && p.lookup != nil {
		role = p.lookup(ctx, tok)
	}
	return role
}

// validSession reports whether r is a dashboard request with a valid
// session cookie. The cookie counts on dashboard paths only: they check
// Origin and a CSRF token on every change, the rest of the API does not.
func (p *Policy) validSession(r *http.Request) bool {
	if p.sessions == nil || !IsDashboardPath(r.URL.Path) {
		return false
	}
	c, err := r.Cookie(SessionCookie)
	return err == nil && p.sessions.Valid(c.Value)
}

// IsDashboardPath reports whether path is the dashboard's (/ui, /ui/...).
func IsDashboardPath(path string) bool {
	return path == "/ui" || strings.HasPrefix(path, "/ui/")
}

// CanRead reports whether r may read (web.Authorizer).
func (p *Policy) CanRead(r *http.Request) bool {
	id, err := p.Authenticate(r)
	return err == nil && id.Role >= RoleReadOnly
}

// CanAdmin reports whether r may change the cluster (web.Authorizer).
func (p *Policy) CanAdmin(r *http.Request) bool {
	id, err := p.Authenticate(r)
	return err == nil && id.Role >= RoleAdmin
}

// IsMutating reports whether an HTTP method changes something: anything
// but GET, HEAD and OPTIONS.
func IsMutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func tokenFromHeader(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		return rest, rest != ""
	case "basic":
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, pass, ok := strings.Cut(string(b), ":")
		return pass, ok && pass != ""
	}
	return "", false
}

// IsUnixSocket reports whether r came over a unix socket: the server's
// local address is a unix one or, for requests made in process (no local
// address), the RemoteAddr is a unix peer's ("@" or empty).
func IsUnixSocket(r *http.Request) bool {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.UnixAddr:
		return true
	case net.Addr:
		return a.Network() == "unix"
	}
	return r.RemoteAddr == "" || r.RemoteAddr == "@"
}

// IsLocal reports whether a RemoteAddr is a loopback address or a unix
// socket peer ("@" or empty).
func IsLocal(remoteAddr string) bool {
	return remoteAddr == "" || remoteAddr == "@" || IsLoopback(remoteAddr)
}

// IsLoopback reports whether a RemoteAddr ("ip:port") is a loopback
// address (not a unix socket peer).
func IsLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// IsLoopbackListenAddr reports whether a TCP listen address ("host:port")
// only accepts loopback callers: its host is a loopback IP or "localhost".
// An empty host, 0.0.0.0, :: or any other address is not.
func IsLoopbackListenAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

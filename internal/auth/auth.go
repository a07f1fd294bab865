// Package auth decides who is calling fleetd's API and what they may do.
//
// Contract:
//  1. Roles: RoleAdmin may do anything; RoleReadOnly may only read (GET,
//     HEAD, OPTIONS); RoleNone is refused.
//  2. A request that carries an Authorization header is judged by it alone,
//     whatever its source: "Bearer <token>" or "Basic <base64(user:token)>"
//     (the user is ignored; browsers can send it for the dashboard). The
//     token is compared in constant time with every configured token; an
//     unknown token is ErrInvalidCredential.
//  3. Otherwise a client certificate verified against api_tls_client_ca
//     (r.TLS.VerifiedChains) gives CertRole of the leaf.
//  4. Otherwise unix-socket and loopback callers are admin when
//     TrustLocal is set (the default in fleetd); anybody else has
//     ErrNoCredential.
//  5. Tokens files hold one "<role> <token>" or "<token> <role>" per line
//     (roles admin, readonly); blank lines and '#' comments are skipped;
//     tokens are at least MinTokenLength bytes and unique.
package auth

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
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
	// ErrNoCredential: the caller is not local and sent no credential.
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

// Policy authenticates requests.
type Policy struct {
	tokens     *Tokens
	trustLocal bool
}

// Config configures a Policy.
type Config struct {
	// Tokens are the accepted access tokens (may be nil).
	Tokens *Tokens
	// TrustLocal makes unix-socket and loopback callers without a
	// credential admin.
	TrustLocal bool
}

// New returns a Policy.
func New(cfg Config) *Policy {
	return &Policy{tokens: cfg.Tokens, trustLocal: cfg.TrustLocal}
}

// Identity is an authenticated caller.
type Identity struct {
	Role Role
	// Via is how: "local", "token" or "cert".
	Via string
	// Name is the certificate's CommonName (Via "cert").
	Name string
}

// Authenticate tells who r comes from (see the package contract).
func (p *Policy) Authenticate(r *http.Request) (Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := tokenFromHeader(h)
		if !ok {
			return Identity{}, ErrInvalidCredential
		}
		role := p.tokens.Lookup(tok)
		if role == RoleNone {
			return Identity{}, ErrInvalidCredential
		}
		return Identity{Role: role, Via: "token"}, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		return Identity{Role: CertRole(leaf), Via: "cert", Name: leaf.Subject.CommonName}, nil
	}
	if p.trustLocal && IsLocal(r.RemoteAddr) {
		return Identity{Role: RoleAdmin, Via: "local"}, nil
	}
	return Identity{}, ErrNoCredential
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

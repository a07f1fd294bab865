package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	tokA = "aaaaaaaaaaaaaaaaaaaaaaaa"
	tokR = "rrrrrrrrrrrrrrrrrrrrrrrr"
)

func TestParseTokens(t *testing.T) {
	toks, err := ParseTokens("f", []byte("# comment\n\nadmin "+tokA+"\n  "+tokR+"\treadonly  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 || toks.Lookup(tokA) != RoleAdmin || toks.Lookup(tokR) != RoleReadOnly ||
		toks.Lookup("x") != RoleNone || toks.Lookup("") != RoleNone || toks.Lookup(tokA+"x") != RoleNone {
		t.Errorf("lookups wrong")
	}
	if toks.First(RoleReadOnly) != tokR || toks.First(RoleAdmin) != tokA {
		t.Errorf("First wrong")
	}
	for _, tc := range []struct{ in, want string }{
		{"admin", `f:1: want "<role> <token>"`},
		{"admin a b", `f:1: want`},
		{"root " + tokA, `f:1: unknown role "root"`},
		{"admin short", "f:1: token too short"},
		{"admin " + tokA + "\nreadonly " + tokA, "f:2: token repeats the one on line 1"},
		{"# nothing\n", "f: no tokens"},
	} {
		_, err := ParseTokens("f", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadTokensMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	if err := os.WriteFile(p, []byte("admin "+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, warns, err := LoadTokens(p); err != nil || len(warns) != 0 {
		t.Fatalf("0600: %v %v", warns, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	_, warns, err := LoadTokens(p)
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0], "chmod 600") {
		t.Fatalf("0644: %v %v", warns, err)
	}
	if _, _, err := LoadTokens(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestCertRole(t *testing.T) {
	for _, tc := range []struct {
		cn   string
		ous  []string
		want Role
	}{
		{"alice", []string{"admin"}, RoleAdmin},
		{"bob", []string{"readonly"}, RoleReadOnly},
		{"carol", []string{"ops", "Admin"}, RoleAdmin},
		{"admin", []string{"readonly"}, RoleReadOnly}, // the OU decides
		{"admin", nil, RoleAdmin},
		{"admin.example.com", nil, RoleAdmin},
		{"administrator", nil, RoleReadOnly},
		{"dave", nil, RoleReadOnly},
	} {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: tc.cn, OrganizationalUnit: tc.ous}}
		if got := CertRole(c); got != tc.want {
			t.Errorf("CN=%s OU=%v: %v, want %v", tc.cn, tc.ous, got, tc.want)
		}
	}
	if CertRole(nil) != RoleNone {
		t.Error("nil certificate has a role")
	}
}

func TestAuthenticate(t *testing.T) {
	toks, err := ParseTokens("f", []byte("admin "+tokA+"\nreadonly "+tokR+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	sessions := NewSessions()
	code, _, err := sessions.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	session, _, err := sessions.Redeem(code)
	if err != nil {
		t.Fatal(err)
	}
	trusting := New(Config{Tokens: toks, TrustLoopback: true})
	strict := New(Config{Tokens: toks, AnonymousRead: AnonymousReadNever})
	auto := New(Config{Tokens: toks, Sessions: sessions})
	open := New(Config{Tokens: toks, AnonymousRead: AnonymousReadAlways})
	certState := func(ou string) *tls.ConnectionState {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: "peer", OrganizationalUnit: []string{ou}}}
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	const remote = "10.1.2.3:1"
	for _, tc := range []struct {
		name   string
		p      *Policy
		remote string
		path   string // default /fleet/v1/units
		authz  string
		cookie string
		tls    *tls.ConnectionState
		role   Role
		via    string
		err    error
	}{
		{name: "unix socket", p: strict, remote: "@", role: RoleAdmin, via: ViaSocket},
		{name: "unix socket, empty addr", p: strict, remote: "", role: RoleAdmin, via: ViaSocket},
		{name: "loopback v4, trusted", p: trusting, remote: "127.0.0.1:1", role: RoleAdmin, via: ViaLoopback},
		{name: "loopback v6, trusted", p: trusting, remote: "[::1]:1", role: RoleAdmin, via: ViaLoopback},
		{name: "loopback v4-mapped, trusted", p: trusting, remote: "[::ffff:127.0.0.1]:1", role: RoleAdmin, via: ViaLoopback},
		{name: "loopback, auto: anonymous reader", p: auto, remote: "127.0.0.1:1", role: RoleReadOnly, via: ViaAnonymous},
		{name: "loopback v6, auto: anonymous reader", p: auto, remote: "[::1]:1", role: RoleReadOnly, via: ViaAnonymous},
		{name: "remote, auto: refused", p: auto, remote: remote, err: ErrNoCredential},
		{name: "remote, trusted loopback: refused", p: trusting, remote: remote, err: ErrNoCredential},
		{name: "remote, anonymous read always", p: open, remote: remote, role: RoleReadOnly, via: ViaAnonymous},
		{name: "loopback, anonymous read never", p: strict, remote: "127.0.0.1:1", err: ErrNoCredential},
		{name: "bearer admin", p: strict, remote: remote, authz: "Bearer " + tokA, role: RoleAdmin, via: ViaToken},
		{name: "bearer readonly", p: strict, remote: remote, authz: "bearer  " + tokR, role: RoleReadOnly, via: ViaToken},
		{name: "bearer unknown", p: trusting, remote: remote, authz: "Bearer " + strings.Repeat("z", 24), err: ErrInvalidCredential},
		{name: "bearer empty", p: trusting, remote: remote, authz: "Bearer ", err: ErrInvalidCredential},
		{name: "unknown scheme", p: trusting, remote: remote, authz: "Digest x", err: ErrInvalidCredential},
		{name: "basic admin", p: strict, remote: remote, authz: basic("me", tokA), role: RoleAdmin, via: ViaToken},
		{name: "basic no password", p: strict, remote: remote, authz: basic(tokA, ""), err: ErrInvalidCredential},
		{name: "basic garbage", p: strict, remote: remote, authz: "Basic !!!", err: ErrInvalidCredential},
		{name: "token beats loopback trust", p: trusting, remote: "127.0.0.1:1", authz: "Bearer " + tokR, role: RoleReadOnly, via: ViaToken},
		{name: "bad token beats the socket", p: auto, remote: "@", authz: "Bearer " + strings.Repeat("z", 24), err: ErrInvalidCredential},
		{name: "bad token beats anonymous read", p: open, remote: remote, authz: "Bearer " + strings.Repeat("z", 24), err: ErrInvalidCredential},
		{name: "cert admin", p: strict, remote: remote, tls: certState("admin"), role: RoleAdmin, via: ViaCert},
		{name: "cert readonly", p: strict, remote: remote, tls: certState("readonly"), role: RoleReadOnly, via: ViaCert},
		{name: "unverified TLS is no credential", p: strict, remote: remote, tls: &tls.ConnectionState{}, err: ErrNoCredential},
		{name: "no tokens configured", p: New(Config{}), remote: remote, authz: "Bearer " + tokA, err: ErrInvalidCredential},
		{name: "session on the dashboard", p: auto, remote: remote, path: "/ui/units/x.service/start", cookie: session, role: RoleAdmin, via: ViaSession},
		{name: "session on /ui", p: auto, remote: remote, path: "/ui", cookie: session, role: RoleAdmin, via: ViaSession},
		{name: "session beats anonymous read", p: auto, remote: "127.0.0.1:1", path: "/ui/", cookie: session, role: RoleAdmin, via: ViaSession},
		{name: "session is no credential for the API", p: auto, remote: remote, path: "/fleet/v1/units", cookie: session, err: ErrNoCredential},
		{name: "session is no credential for /uix", p: auto, remote: remote, path: "/uix", cookie: session, err: ErrNoCredential},
		{name: "unknown session", p: auto, remote: remote, path: "/ui/", cookie: strings.Repeat("A", 43), err: ErrNoCredential},
		{name: "session without Sessions", p: strict, remote: remote, path: "/ui/", cookie: session, err: ErrNoCredential},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/fleet/v1/units"
			}
			r := httptest.NewRequest("GET", path, nil)
			r.RemoteAddr = tc.remote
			r.TLS = tc.tls
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: tc.cookie})
			}
			id, err := tc.p.Authenticate(r)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if id.Role != tc.role || id.Via != tc.via {
				t.Errorf("identity %v via %q, want %v via %q", id.Role, id.Via, tc.role, tc.via)
			}
			if id.Anonymous() != (tc.via == ViaAnonymous) {
				t.Errorf("Anonymous() = %v", id.Anonymous())
			}
			if got := tc.p.CanRead(r); got != (tc.role >= RoleReadOnly) {
				t.Errorf("CanRead %v", got)
			}
			if got := tc.p.CanAdmin(r); got != (tc.role == RoleAdmin) {
				t.Errorf("CanAdmin %v", got)
			}
		})
	}
}

// Tokens not in the static file are asked of Lookup, with the request's
// context; static tokens are not.
func TestAuthenticateLookup(t *testing.T) {
	toks, err := ParseTokens("f", []byte("readonly "+tokR+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const clusterAdmin, clusterRO = "cluster-admin-token-0123456789", "cluster-readonly-token-0123456"
	type ctxKey struct{}
	var asked []string
	lookup := func(ctx context.Context, tok string) Role {
		if ctx.Value(ctxKey{}) != "req" {
			t.Errorf("Lookup got another context")
		}
		asked = append(asked, tok)
		switch HashToken(tok) {
		case HashToken(clusterAdmin):
			return RoleAdmin
		case HashToken(clusterRO):
			return RoleReadOnly
		}
		return RoleNone
	}
	p := New(Config{Tokens: toks, Lookup: lookup, AnonymousRead: AnonymousReadNever})
	for _, tc := range []struct {
		token  string
		role   Role
		err    error
		lookup bool
	}{
		{clusterAdmin, RoleAdmin, nil, true},
		{clusterRO, RoleReadOnly, nil, true},
		{tokR, RoleReadOnly, nil, false},
		{"unknown-unknown-unknown", RoleNone, ErrInvalidCredential, true},
	} {
		asked = nil
		r := httptest.NewRequest("PUT", "/fleet/v1/units/x.service", nil)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "req"))
		r.RemoteAddr = "10.0.0.1:5"
		r.Header.Set("Authorization", "Bearer "+tc.token)
		id, err := p.Authenticate(r)
		if id.Role != tc.role || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s: %v %v, want %v %v", tc.token, id.Role, err, tc.role, tc.err)
		}
		if (len(asked) > 0) != tc.lookup {
			t.Errorf("%s: Lookup asked %v", tc.token, asked)
		}
	}
}

func TestHashToken(t *testing.T) {
	// sha256("abc")
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
}

func TestParseAnonymousRead(t *testing.T) {
	for in, want := range map[string]AnonymousRead{"auto": AnonymousReadLoopback, "": AnonymousReadLoopback, "true": AnonymousReadAlways, "FALSE": AnonymousReadNever} {
		if got, err := ParseAnonymousRead(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseAnonymousRead("yes"); err == nil || !strings.Contains(err.Error(), "auto, true or false") {
		t.Errorf("yes: %v", err)
	}
}

// The server's local address tells a unix-socket request from a TCP one;
// a request made in process falls back to its RemoteAddr.
func TestIsUnixSocket(t *testing.T) {
	for _, tc := range []struct {
		local  net.Addr
		remote string
		want   bool
	}{
		{&net.UnixAddr{Name: "/run/fleet.sock", Net: "unix"}, "@", true},
		{&net.UnixAddr{Name: "/run/fleet.sock", Net: "unix"}, "", true},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "127.0.0.1:5", false},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "", false},
		{nil, "@", true},
		{nil, "", true},
		{nil, "127.0.0.1:5", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tc.local))
		}
		if got := IsUnixSocket(r); got != tc.want {
			t.Errorf("local %v remote %q: %v", tc.local, tc.remote, got)
		}
	}
}

// An identity in the context is taken as is: handlers that forward a
// request in process keep its caller.
func TestAuthenticateFromContext(t *testing.T) {
	p := New(Config{AnonymousRead: AnonymousReadNever})
	r := httptest.NewRequest("GET", "/fleet/v1/journal/x.service", nil)
	r.RemoteAddr = "10.0.0.1:5"
	if _, err := p.Authenticate(r); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("without context: %v", err)
	}
	r = r.WithContext(NewContext(r.Context(), Identity{Role: RoleAdmin, Via: ViaSession}))
	if id, err := p.Authenticate(r); err != nil || id.Role != RoleAdmin || id.Via != ViaSession {
		t.Fatalf("with context: %v %v", id, err)
	}
}

func TestIsLocal(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:2": true, "@": true, "": true, "[::ffff:127.0.0.1]:3": true, "10.0.0.1:4": false, "[fe80::1]:5": false, "garbage": false} {
		if got := IsLocal(addr); got != want {
			t.Errorf("IsLocal(%q) = %v", addr, got)
		}
		// IsLoopback is IsLocal without the unix socket peers.
		if got := IsLoopback(addr); got != (want && addr != "@" && addr != "") {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

func TestIsLoopbackListenAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:49153": true, "127.0.0.2:1": true, "[::1]:1": true, "localhost:1": true,
		":49153": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false, "junk": false,
	} {
		if got := IsLoopbackListenAddr(addr); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
}

func TestIsMutating(t *testing.T) {
	for m, want := range map[string]bool{"GET": false, "HEAD": false, "OPTIONS": false, "PUT": true, "POST": true, "DELETE": true, "PATCH": true, "BREW": true} {
		if IsMutating(m) != want {
			t.Errorf("%s", m)
		}
	}
}

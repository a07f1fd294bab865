package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
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
	trusting := New(Config{Tokens: toks, TrustLocal: true})
	strict := New(Config{Tokens: toks})
	certState := func(ou string) *tls.ConnectionState {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: "peer", OrganizationalUnit: []string{ou}}}
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, tc := range []struct {
		name   string
		p      *Policy
		remote string
		authz  string
		tls    *tls.ConnectionState
		role   Role
		err    error
	}{
		{"unix socket", trusting, "@", "", nil, RoleAdmin, nil},
		{"unix socket, empty addr", trusting, "", "", nil, RoleAdmin, nil},
		{"loopback v4", trusting, "127.0.0.1:1", "", nil, RoleAdmin, nil},
		{"loopback v6", trusting, "[::1]:1", "", nil, RoleAdmin, nil},
		{"loopback v4-mapped", trusting, "[::ffff:127.0.0.1]:1", "", nil, RoleAdmin, nil},
		{"remote", trusting, "10.1.2.3:1", "", nil, RoleNone, ErrNoCredential},
		{"loopback, not trusted", strict, "127.0.0.1:1", "", nil, RoleNone, ErrNoCredential},
		{"unix, not trusted", strict, "@", "", nil, RoleNone, ErrNoCredential},
		{"bearer admin", strict, "10.1.2.3:1", "Bearer " + tokA, nil, RoleAdmin, nil},
		{"bearer readonly", strict, "10.1.2.3:1", "bearer  " + tokR, nil, RoleReadOnly, nil},
		{"bearer unknown", trusting, "10.1.2.3:1", "Bearer " + strings.Repeat("z", 24), nil, RoleNone, ErrInvalidCredential},
		{"bearer empty", trusting, "10.1.2.3:1", "Bearer ", nil, RoleNone, ErrInvalidCredential},
		{"unknown scheme", trusting, "10.1.2.3:1", "Digest x", nil, RoleNone, ErrInvalidCredential},
		{"basic admin", strict, "10.1.2.3:1", basic("me", tokA), nil, RoleAdmin, nil},
		{"basic no password", strict, "10.1.2.3:1", basic(tokA, ""), nil, RoleNone, ErrInvalidCredential},
		{"basic garbage", strict, "10.1.2.3:1", "Basic !!!", nil, RoleNone, ErrInvalidCredential},
		{"token beats loopback", trusting, "127.0.0.1:1", "Bearer " + tokR, nil, RoleReadOnly, nil},
		{"cert admin", strict, "10.1.2.3:1", "", certState("admin"), RoleAdmin, nil},
		{"cert readonly", strict, "10.1.2.3:1", "", certState("readonly"), RoleReadOnly, nil},
		{"unverified TLS is no credential", strict, "10.1.2.3:1", "", &tls.ConnectionState{}, RoleNone, ErrNoCredential},
		{"no tokens configured", New(Config{}), "10.1.2.3:1", "Bearer " + tokA, nil, RoleNone, ErrInvalidCredential},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/fleet/v1/units", nil)
			r.RemoteAddr = tc.remote
			r.TLS = tc.tls
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			id, err := tc.p.Authenticate(r)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if id.Role != tc.role {
				t.Errorf("role %v, want %v", id.Role, tc.role)
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

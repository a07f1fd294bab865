package clusterauth

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestEnsureTokenIsPrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), TokenFileName)
	tok, created, warn, err := EnsureToken(path, rand.Reader)
	if err != nil || !created || warn != "" {
		t.Fatalf("EnsureToken: %q %v %q %v", tok, created, warn, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	again, created, _, err := EnsureToken(path, rand.Reader)
	if err != nil || created || again != tok {
		t.Fatalf("second EnsureToken: %q created=%v %v; want the same token", again, created, err)
	}
	if len(tok) < 40 {
		t.Fatalf("token %q is short", tok)
	}
}

func TestReadTokenChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		err, warn  string
	}{
		{"ok", "abcdefghijklmnopqrstuvwxyz\n", 0o600, "", ""},
		{"readable", "abcdefghijklmnopqrstuvwxyz", 0o644, "", "chmod 600"},
		{"empty", "\n", 0o600, "is empty", ""},
		{"short", "abc", 0o600, "too short", ""},
		{"spaces", "abcdefgh ijklmnopqrstu", 0o600, "printable ASCII", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, warn, err := ReadToken(write(tc.name, tc.body, tc.mode))
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v; want %q", err, tc.err)
			}
			if !strings.Contains(warn, tc.warn) || (tc.warn == "" && warn != "") {
				t.Fatalf("warning %q; want %q", warn, tc.warn)
			}
		})
	}
	if _, _, err := ReadToken(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestAuthorityIsDeterministicPerToken(t *testing.T) {
	a1, err := DeriveAuthority("token-one-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := DeriveAuthority("token-one-0123456789")
	b, _ := DeriveAuthority("token-two-0123456789")
	if !bytes.Equal(a1.CertPEM(), a2.CertPEM()) {
		t.Fatal("same token, different CA certificates")
	}
	if bytes.Equal(a1.CertPEM(), b.CertPEM()) {
		t.Fatal("different tokens, same CA certificate")
	}
	// A leaf issued by one machine's derivation verifies with another's.
	certPEM, _, err := a1.Issue([]string{"10.0.0.1", "m1.example", "127.0.0.1"}, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEM(t, certPEM)
	for _, host := range []string{"10.0.0.1", "m1.example", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: a2.Pool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s with the same token's CA: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a2.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client certificate: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.Pool(), DNSName: "10.0.0.1"}); err == nil {
		t.Error("another token's CA verified the leaf")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a2.Pool(), DNSName: "10.0.0.2"}); err == nil {
		t.Error("leaf verified for a host it was not issued for")
	}
	if _, err := DeriveAuthority("short"); err == nil {
		t.Error("short token accepted")
	}
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, err := pemDecode(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(block)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlainBeyondLoopback(t *testing.T) {
	for url, want := range map[string]bool{
		"http://127.0.0.1:2379":        false,
		"http://127.0.0.2:2379":        false,
		"http://[::1]:2379":            false,
		"http://localhost:2379":        false,
		"http://LOCALHOST:2379":        false,
		"https://10.0.0.1:2379":        false,
		"http://10.0.0.1:2379":         true,
		"http://0.0.0.0:2379":          true,
		"http://[::]:2379":             true,
		"http://etcd.example:2379":     true,
		"http://127.0.0.1.nip.io:2379": true,
	} {
		if got := PlainBeyondLoopback(url); got != want {
			t.Errorf("PlainBeyondLoopback(%s) = %v; want %v", url, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "t")
	if err := WriteToken(tokFile, "the-cluster-token-0123"); err != nil {
		t.Fatal(err)
	}
	r, err := Credentials{Endpoints: []string{"http://127.0.0.1:2379"}, TokenFile: tokFile}.Resolve()
	if err != nil || r.Username != RootUser || r.Password != "the-cluster-token-0123" || r.TLS != nil {
		t.Fatalf("loopback http with token: %+v %v", r, err)
	}
	r, err = Credentials{Endpoints: []string{"https://10.0.0.1:2379"}, TokenFile: tokFile}.Resolve()
	if err != nil || r.TLS == nil || r.TLS.RootCAs == nil {
		t.Fatalf("https with token: %+v %v; want the derived CA", r, err)
	}
	_, err = Credentials{Endpoints: []string{"http://10.0.0.1:2379"}, TokenFile: tokFile}.Resolve()
	if err == nil || !strings.Contains(err.Error(), "plain HTTP beyond loopback") || !strings.Contains(err.Error(), "etcd_insecure") {
		t.Fatalf("http beyond loopback: %v", err)
	}
	if _, err = (Credentials{Endpoints: []string{"http://10.0.0.1:2379"}, Insecure: true}).Resolve(); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	_, err = Credentials{Endpoints: []string{"http://127.0.0.1:2379"}, TokenFile: filepath.Join(dir, "nope")}.Resolve()
	if err == nil || !strings.Contains(err.Error(), "--cluster-token-file") {
		t.Fatalf("missing token file: %v", err)
	}
	_, err = Credentials{Endpoints: []string{"http://127.0.0.1:2379"}, TokenFile: tokFile, Username: "u"}.Resolve()
	if err == nil {
		t.Fatal("token and user name together accepted")
	}
}

func TestExplainNamesTheFlag(t *testing.T) {
	c := Credentials{Endpoints: []string{"http://127.0.0.1:2379"}}
	if err := c.Explain(rpctypes.ErrUserEmpty); !strings.Contains(err.Error(), "--cluster-token-file") {
		t.Errorf("no credential: %v", err)
	}
	c.TokenFile = "/x/cluster-token"
	if err := c.Explain(rpctypes.ErrAuthFailed); !strings.Contains(err.Error(), "/x/cluster-token") || !strings.Contains(err.Error(), "not this cluster's token") {
		t.Errorf("wrong token: %v", err)
	}
	other := errors.New("context deadline exceeded")
	if err := c.Explain(other); err != other {
		t.Errorf("other error rewritten: %v", err)
	}
}

func pemDecode(b []byte) ([]byte, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM")
	}
	return block.Bytes, nil
}

package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/auth/authtest"
	"github.com/fleetd/fleet/internal/config"
)

const (
	testAdminToken    = "admin-0123456789abcdef0123456789"
	testReadonlyToken = "readonly-0123456789abcdef012345"
)

// syncBuffer collects fleetd's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testFleetd is a fleetd run in process.
type testFleetd struct {
	sock    string
	dataDir string
	log     *syncBuffer
	done    chan error
}

// adminToken is the token fleetd wrote to <data_dir>/admin-token.
func (f *testFleetd) adminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dataDir, AdminTokenFileName))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func freeTCP(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testConfig(t *testing.T, args ...string) (config.Config, error) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	dir := t.TempDir()
	base := []string{
		"--config=",
		"--machine-id", hex.EncodeToString(b),
		"--data-dir", dir,
		"--public-ip", "127.0.0.1",
		"--etcd-listen-client", "http://" + freeTCP(t, "127.0.0.1"),
		"--etcd-listen-peer", "http://" + freeTCP(t, "127.0.0.1"),
		"--api-addr", "unix://" + filepath.Join(dir, "fleet.sock"),
		// Never the fixed 127.0.0.1:4001: tests run side by side.
		"--etcd-v2-listen", freeTCP(t, "127.0.0.1"),
	}
	return config.Load(append(base, args...), nil, nil, nil)
}

// runFleetd starts fleetd with extra args (later flags win) and waits for
// its unix socket to answer.
func runFleetd(t *testing.T, args ...string) *testFleetd {
	t.Helper()
	return runFleetdWith(t, nil, args...)
}

// runFleetdWith is runFleetd with extra components running along with
// fleetd's own.
func runFleetdWith(t *testing.T, extra []component, args ...string) *testFleetd {
	t.Helper()
	cfg, err := testConfig(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var sock string
	for _, a := range cfg.APIAddr {
		if p, ok := strings.CutPrefix(a, "unix://"); ok {
			sock = p
		}
	}
	f := &testFleetd{sock: sock, dataDir: cfg.DataDir, log: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { f.done <- run(ctx, cfg, slog.New(slog.NewTextHandler(f.log, nil)), extra) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(40 * time.Second):
			t.Errorf("fleetd did not stop")
		}
		if t.Failed() {
			t.Logf("fleetd log:\n%s", f.log)
		}
	})
	hc := f.unixClient()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-f.done:
			t.Fatalf("fleetd exited: %v\n%s", err, f.log)
		default:
		}
		for _, tok := range []string{"", testAdminToken} {
			req, _ := http.NewRequest("GET", "http://sock/fleet/v1/machines", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if resp, err := hc.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(b), cfg.MachineID) {
					return f
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("fleetd did not come up:\n%s", f.log)
	return nil
}

func (f *testFleetd) unixClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", f.sock)
		},
	}}
}

type answer struct {
	code int
	body string
}

func call(t *testing.T, hc *http.Client, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b)}
}

func unitJSON(name string) string {
	return `{"name":"` + name + `","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`
}

func tokensFile(t *testing.T) string {
	return authtest.TokensFile(t, t.TempDir(), "admin "+testAdminToken, testReadonlyToken+" readonly")
}

// A listener beyond loopback needs no tokens file any more: every fleetd
// has an admin token. api_insecure without credentials turns
// authentication off; a tokens file that cannot be read stops fleetd.
func TestSetupSecurity(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		args   []string
		policy bool
		err    string
	}{
		{[]string{"--api-addr", "0.0.0.0:0"}, true, ""},
		{[]string{"--api-addr", "192.0.2.1:49153", "--api-trust-loopback=false"}, true, ""},
		{[]string{"--api-addr", "0.0.0.0:0", "--api-insecure"}, false, ""},
		{[]string{"--api-addr", "0.0.0.0:0", "--api-insecure", "--api-tokens-file", tokensFile(t)}, true, ""},
		{[]string{"--api-tokens-file", filepath.Join(t.TempDir(), "missing")}, false, "api_tokens_file"},
	} {
		cfg, err := testConfig(t, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := setupSecurity(cfg, log)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if (sec.policy != nil) != tc.policy {
			t.Errorf("%v: policy %v, want %v", tc.args, sec.policy != nil, tc.policy)
		}
	}
}

// The message of a refusal names the unix socket and the admin-token
// file; the Host allowlist has loopback, public_ip, api_addr hosts and
// api_allowed_hosts.
func TestCredentialHintAndHosts(t *testing.T) {
	cfg, err := testConfig(t, "--api-addr", "10.9.8.7:49153,unix:///run/x/fleet.sock", "--public-ip", "192.0.2.44",
		"--api-allowed-hosts", "fleet.example.com,other.example")
	if err != nil {
		t.Fatal(err)
	}
	hint := credentialHint(cfg)
	for _, want := range []string{"unix:///run/x/fleet.sock", filepath.Join(cfg.DataDir, "admin-token"), "--token-file", "FLEETCTL_TOKEN"} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q lacks %q", hint, want)
		}
	}
	h := hostAllowlist(cfg)
	host, _ := os.Hostname()
	for name, want := range map[string]bool{
		"127.0.0.1:49153": true, "localhost": true, "10.9.8.7:49153": true, "192.0.2.44": true,
		"fleet.example.com:49153": true, "other.example": true, host: host != "", "attacker.example": false,
	} {
		if got := h.Allowed(name); got != want {
			t.Errorf("Allowed(%q) = %v", name, got)
		}
	}
}

// A real listener on a non-loopback address of this machine: callers there
// are not local, so they need a token.
func TestNonLoopbackListenerNeedsToken(t *testing.T) {
	ip := authtest.NonLoopbackIP()
	if ip == "" {
		t.Skip("no non-loopback IPv4 address on this machine to listen on")
	}
	addr := freeTCP(t, ip)
	f := runFleetd(t, "--api-addr", addr+",unix://"+filepath.Join(t.TempDir(), "f.sock"), "--api-tokens-file", tokensFile(t))
	base := "http://" + addr
	hc := &http.Client{Timeout: 10 * time.Second}

	// The connection really comes from a non-loopback address.
	if a := call(t, hc, "GET", base+"/fleet/v1/units", "", ""); a.code != 401 || !strings.Contains(a.body, "credential is required") {
		t.Fatalf("GET without token: %d %s", a.code, a.body)
	}
	for _, c := range []struct {
		method, path, token, body string
		code                      int
	}{
		{"PUT", "/fleet/v1/units/none.service", "", unitJSON("none.service"), 401},
		{"PUT", "/fleet/v1/units/bad.service", "not-a-token-not-a-token", unitJSON("bad.service"), 401},
		{"GET", "/ui/", "", "", 401},
		{"GET", "/metrics", "", "", 401},
		{"PUT", "/fleet/v1/kv/app/x", "", `{"value":"1"}`, 401},
		{"GET", "/fleet/v1/units", testReadonlyToken, "", 200},
		{"GET", "/fleet/v1/machines", testReadonlyToken, "", 200},
		{"PUT", "/fleet/v1/units/ro.service", testReadonlyToken, unitJSON("ro.service"), 403},
		{"PUT", "/fleet/v1/kv/app/x", testReadonlyToken, `{"value":"1"}`, 403},
		{"PUT", "/fleet/v1/units/admin.service", testAdminToken, unitJSON("admin.service"), 201},
	} {
		a := call(t, hc, c.method, base+c.path, c.token, c.body)
		if a.code != c.code {
			t.Errorf("%s %s (token %q): %d %s, want %d", c.method, c.path, c.token, a.code, a.body, c.code)
		}
		if c.code == 403 && !strings.Contains(a.body, "permission denied: read-only credential cannot "+c.method+" "+c.path) {
			t.Errorf("%s %s: 403 message %s", c.method, c.path, a.body)
		}
	}
	// Nothing refused was stored; the unix socket needs no token.
	u := f.unixClient()
	for name, code := range map[string]int{"none.service": 404, "bad.service": 404, "ro.service": 404, "admin.service": 200} {
		if a := call(t, u, "GET", "http://sock/fleet/v1/units/"+name, "", ""); a.code != code {
			t.Errorf("unit %s: %d %s, want %d", name, a.code, a.body, code)
		}
	}
	if a := call(t, u, "GET", "http://sock/fleet/v1/kv/app/x", "", ""); a.code != 404 {
		t.Errorf("kv key after refused writes: %d %s", a.code, a.body)
	}
}

func TestAPITLSAndClientCertificates(t *testing.T) {
	ca := authtest.NewCA(t, "fleet-api-ca")
	srvCert, srvKey := ca.Issue(t, "server", authtest.Cert{CommonName: "fleetd"})
	adminCert, adminKey := ca.Issue(t, "admin", authtest.Cert{CommonName: "alice", OUs: []string{"admin"}})
	roCert, roKey := ca.Issue(t, "ro", authtest.Cert{CommonName: "bob", OUs: []string{"readonly"}})
	other := authtest.NewCA(t, "other")
	badCert, badKey := other.Issue(t, "bad", authtest.Cert{CommonName: "mallory", OUs: []string{"admin"}})

	addr := freeTCP(t, "127.0.0.1")
	f := runFleetd(t, "--api-addr", addr+",unix://"+filepath.Join(t.TempDir(), "f.sock"),
		"--api-tls-cert", srvCert, "--api-tls-key", srvKey, "--api-tls-client-ca", ca.CAFile,
		"--api-tokens-file", tokensFile(t),
		// Loopback is not trusted (the default), so certificates and
		// tokens decide.
		"--api-trust-loopback=false")
	base := "https://" + addr
	client := func(cert, key string) *http.Client {
		pem, err := os.ReadFile(ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{RootCAs: x509.NewCertPool()}
		cfg.RootCAs.AppendCertsFromPEM(pem)
		if cert != "" {
			c, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}

	// Plain HTTP to the TLS port fails.
	if a := call(t, &http.Client{Timeout: 5 * time.Second}, "GET", "http://"+addr+"/fleet/v1/units", "", ""); a.code != 400 {
		t.Errorf("plain HTTP to the TLS port: %d %s", a.code, a.body)
	}
	none := client("", "")
	// Loopback callers without a credential may read, not change.
	if a := call(t, none, "GET", base+"/fleet/v1/units", "", ""); a.code != 200 {
		t.Errorf("TLS without credential, GET: %d %s", a.code, a.body)
	}
	if a := call(t, none, "PUT", base+"/fleet/v1/units/anon.service", "", unitJSON("anon.service")); a.code != 401 {
		t.Errorf("TLS without credential, PUT: %d %s", a.code, a.body)
	}
	if a := call(t, none, "GET", base+"/fleet/v1/units", testReadonlyToken, ""); a.code != 200 {
		t.Errorf("TLS with a token: %d %s", a.code, a.body)
	}
	ro := client(roCert, roKey)
	if a := call(t, ro, "GET", base+"/fleet/v1/units", "", ""); a.code != 200 {
		t.Errorf("readonly certificate GET: %d %s", a.code, a.body)
	}
	if a := call(t, ro, "PUT", base+"/fleet/v1/units/ro.service", "", unitJSON("ro.service")); a.code != 403 ||
		!strings.Contains(a.body, "read-only credential cannot PUT") {
		t.Errorf("readonly certificate PUT: %d %s", a.code, a.body)
	}
	admin := client(adminCert, adminKey)
	if a := call(t, admin, "PUT", base+"/fleet/v1/units/cert.service", "", unitJSON("cert.service")); a.code != 201 {
		t.Errorf("admin certificate PUT: %d %s", a.code, a.body)
	}
	// A certificate of another authority is no credential: the handshake
	// fails, or (Go's client does not offer a certificate the server's CA
	// list does not name) the request is unauthenticated.
	req, _ := http.NewRequest("PUT", base+"/fleet/v1/units/bad.service", strings.NewReader(unitJSON("bad.service")))
	if resp, err := client(badCert, badKey).Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("foreign certificate: %d", resp.StatusCode)
		}
	}
	// The machine advertises its https URL (peers proxy there).
	if !strings.Contains(f.log.String(), "api="+base) {
		t.Errorf("fleetd does not advertise %s", base)
	}
	// The unix socket is the trusted local channel.
	if a := call(t, f.unixClient(), "GET", "http://sock/fleet/v1/units", "", ""); a.code != 200 {
		t.Errorf("unix socket: %d %s", a.code, a.body)
	}
	for _, name := range []string{"ro.service", "bad.service", "anon.service"} {
		if a := call(t, f.unixClient(), "GET", "http://sock/fleet/v1/units/"+name, testAdminToken, ""); a.code != 404 {
			t.Errorf("refused unit %s stored: %d %s", name, a.code, a.body)
		}
	}
}

// The embedded etcd serves TLS and requires client certificates; fleetd's
// own store connects with etcd_cafile/etcd_certfile/etcd_keyfile.
func TestEmbeddedEtcdTLS(t *testing.T) {
	ca := authtest.NewCA(t, "etcd-ca")
	srvCert, srvKey := ca.Issue(t, "etcd", authtest.Cert{CommonName: "etcd"})
	cliCert, cliKey := ca.Issue(t, "fleetd", authtest.Cert{CommonName: "fleetd"})
	etcdURL := "https://" + freeTCP(t, "127.0.0.1")
	f := runFleetd(t,
		"--etcd-listen-client", etcdURL,
		"--etcd-listen-peer", "https://"+freeTCP(t, "127.0.0.1"),
		"--etcd-server-cert", srvCert, "--etcd-server-key", srvKey, "--etcd-client-ca", ca.CAFile,
		"--etcd-peer-cert", srvCert, "--etcd-peer-key", srvKey, "--etcd-peer-ca", ca.CAFile,
		"--etcd-cafile", ca.CAFile, "--etcd-certfile", cliCert, "--etcd-keyfile", cliKey)
	u := f.unixClient()
	if a := call(t, u, "PUT", "http://sock/fleet/v1/units/tls.service", "", unitJSON("tls.service")); a.code != 201 {
		t.Fatalf("PUT through the TLS store: %d %s", a.code, a.body)
	}
	if a := call(t, u, "GET", "http://sock/fleet/v1/units/tls.service", "", ""); a.code != 200 {
		t.Fatalf("GET: %d %s", a.code, a.body)
	}
	// Without a client certificate etcd refuses.
	pem, _ := os.ReadFile(ca.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 2 * time.Second,
		TLS: &tls.Config{RootCAs: pool}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/", clientv3.WithPrefix()); err == nil {
		t.Error("etcd answered a client without a certificate")
	}
	if !strings.HasPrefix(etcdURL, "https://") {
		t.Fatal(fmt.Sprint("not TLS: ", etcdURL))
	}
}

package daemon

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The etcd v2 API on etcd_v2_listen takes the API's tokens: the admin token
// registered in etcd and api_tokens_file's admin tokens may write; an
// anonymous loopback caller may only read.
func TestEtcdV2API(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts an embedded etcd")
	}
	addr := freeTCP(t, "127.0.0.1")
	f := runFleetd(t, "--etcd-v2-listen", addr, "--api-tokens-file", tokensFile(t))
	b, err := os.ReadFile(filepath.Join(f.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(b))
	base := "http://" + addr
	hc := &http.Client{Timeout: 10 * time.Second}
	v2 := func(method, path, auth, body string) answer {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body2, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, string(body2)}
	}
	basic := func(tok string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("fleet:"+tok))
	}
	val := url.Values{"value": {"1"}}.Encode()
	for _, c := range []struct {
		method, path, auth, body string
		code                     int
		want                     string
	}{
		{"PUT", "/v2/keys/app/anon", "", val, 401, `"errorCode":110`},
		{"PUT", "/v2/keys/app/bad", basic("not-a-token-not-a-token"), val, 401, `"errorCode":110`},
		{"PUT", "/v2/keys/app/ro", "Bearer " + testReadonlyToken, val, 401, `"errorCode":110`},
		{"PUT", "/v2/keys/app/admin", basic(admin), val, 201, `"action":"set"`},
		{"PUT", "/v2/keys/app/file", "Bearer " + testAdminToken, val, 201, `"action":"set"`},
		{"PUT", "/v2/keys/_coreos.com/fleet/x", basic(admin), val, 400, `"errorCode":107`},
		{"GET", "/v2/keys/app?recursive=true", "", "", 200, `"key":"/app/admin"`},
		{"GET", "/v2/members", "", "", 200, `"clientURLs":["` + base + `"]`},
	} {
		a := v2(c.method, c.path, c.auth, c.body)
		if a.code != c.code || !strings.Contains(a.body, c.want) {
			t.Errorf("%s %s (%.12s): %d %s; want %d with %s", c.method, c.path, c.auth, a.code, a.body, c.code, c.want)
		}
	}
	if a := v2("GET", "/v2/keys/app/anon", "", ""); a.code != 404 {
		t.Errorf("refused write stored: %d %s", a.code, a.body)
	}
}

// A port in use fails the start, naming the flag.
func TestEtcdV2ListenInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts an embedded etcd")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg, err := testConfig(t, "--etcd-v2-listen", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log syncBuffer
	err = Run(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err == nil || !strings.Contains(err.Error(), "--etcd-v2-listen (etcd_v2_listen) "+l.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Run = %v; want the flag and \"address already in use\"\n%s", err, &log)
	}
}

// Units get what etcdctl v2 needs: the v2 API's loopback URL, the v2
// protocol, the admin token as etcdctl's user:password.
func TestEtcdV2UnitEnv(t *testing.T) {
	for listen, want := range map[string]string{"127.0.0.1:0": "http://127.0.0.1:", "0.0.0.0:0": "http://127.0.0.1:"} {
		cfg, err := testConfig(t, "--etcd-v2-listen", listen)
		if err != nil {
			t.Fatal(err)
		}
		v, err := listenEtcdV2(cfg)
		if err != nil {
			t.Fatal(err)
		}
		port := v.l.Addr().(*net.TCPAddr).Port
		env := strings.Join(append(v.unitEnv(), unitCredentialEnv("tok")...), "\n")
		u := want + strconv.Itoa(port)
		for _, w := range []string{"ETCDCTL_API=2", "ETCDCTL_ENDPOINT=" + u, "ETCDCTL_ENDPOINTS=" + u, "ETCDCTL_USERNAME=fleet:tok"} {
			if !strings.Contains(env, w) {
				t.Errorf("%s (port %d): env %q lacks %q", listen, port, env, w)
			}
		}
		if listen == "0.0.0.0:0" && !strings.HasPrefix(v.url, "http://127.0.0.1:") {
			t.Errorf("advertised %s", v.url) // public_ip 127.0.0.1 in testConfig
		}
		v.close()
	}
	cfg, _ := testConfig(t, "--etcd-v2-listen=")
	if v, err := listenEtcdV2(cfg); v != nil || err != nil {
		t.Errorf("disabled: %v %v", v, err)
	}
}

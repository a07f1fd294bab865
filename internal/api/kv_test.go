package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func TestKVRoundTrip(t *testing.T) {
	e := newEnv(t, 0)
	r := e.do("PUT", "/fleet/v1/kv/services/web/1/host", "application/json", `{"value":"10.0.0.1:80"}`)
	if r.code != http.StatusOK || !strings.Contains(r.body, `"value":"10.0.0.1:80"`) {
		t.Fatalf("put: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/services/web/1/host", "", "")
	if r.code != http.StatusOK || r.body != `{"key":"/services/web/1/host","value":"10.0.0.1:80"}` {
		t.Fatalf("get: %d %s", r.code, r.body)
	}
	e.do("PUT", "/fleet/v1/kv/services/web/2/host", "application/json", `{"value":"10.0.0.2:80"}`)
	e.do("PUT", "/fleet/v1/kv/services/web", "application/json", `{"value":"not a dir in v3"}`)
	e.do("PUT", "/fleet/v1/kv/services/webx", "application/json", `{"value":"sibling"}`)

	r = e.do("GET", "/fleet/v1/kv/services/web?list=true", "", "")
	if r.code != http.StatusOK || r.body != `{"nodes":[{"key":"/services/web/1","dir":true},{"key":"/services/web/2","dir":true}]}` {
		t.Fatalf("ls: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/services/web?recursive=true", "", "")
	if r.code != http.StatusOK || r.body != `{"nodes":[{"key":"/services/web/1/host","value":"10.0.0.1:80"},{"key":"/services/web/2/host","value":"10.0.0.2:80"}]}` {
		t.Fatalf("ls -r: %d %s", r.code, r.body)
	}
	// The root lists, without fleet's own keys.
	if _, err := e.store.KV().Raw().Put(e.ctx(), e.store.Prefix()+"units/x", "{}"); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/fleet/v1/kv/?recursive=true", "", "")
	if r.code != http.StatusOK || strings.Contains(r.body, "fleet-test") || !strings.Contains(r.body, "/services/webx") {
		t.Fatalf("ls -r /: %d %s", r.code, r.body)
	}

	r = e.do("DELETE", "/fleet/v1/kv/services/web/1/host", "", "")
	if r.code != http.StatusNoContent {
		t.Fatalf("rm: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/services/web/1/host", "", "")
	if r.code != http.StatusNotFound || !strings.Contains(r.body, "Key not found (/services/web/1/host)") {
		t.Fatalf("get after rm: %d %s", r.code, r.body)
	}
	r = e.do("DELETE", "/fleet/v1/kv/services/web/1/host", "", "")
	if r.code != http.StatusNotFound {
		t.Fatalf("rm missing: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/services/web/2", "", "")
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "is a directory") {
		t.Fatalf("get dir: %d %s", r.code, r.body)
	}
	r = e.do("DELETE", "/fleet/v1/kv/services/web?recursive=true", "", "")
	if r.code != http.StatusNoContent {
		t.Fatalf("rm -r: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/services?recursive=true", "", "")
	if r.code != http.StatusOK || r.body != `{"nodes":[{"key":"/services/webx","value":"sibling"}]}` {
		t.Fatalf("after rm -r (the sibling stays): %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/nothing/here?list=true", "", "")
	if r.code != http.StatusNotFound {
		t.Fatalf("ls missing: %d %s", r.code, r.body)
	}
}

func TestKVTTL(t *testing.T) {
	e := newEnv(t, 0)
	r := e.do("PUT", "/fleet/v1/kv/tmp/lease", "application/json", `{"value":"v","ttl":"2s"}`)
	if r.code != http.StatusOK || !strings.Contains(r.body, `"ttl":2`) {
		t.Fatalf("put ttl: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/fleet/v1/kv/tmp/lease", "", "")
	var got kvNode
	if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil || got.TTL < 1 || got.TTL > 2 {
		t.Fatalf("get ttl (want 1 or 2 s left): %d %s", r.code, r.body)
	}
	// The key is on a lease of its own, of the ttl rounded up to seconds.
	kv, found, _, err := e.store.KV().Get(e.ctx(), "/tmp/lease")
	if err != nil || !found || kv.Lease == etcdkv.NoLease {
		t.Fatalf("stored key %+v found %v err %v", kv, found, err)
	}
	if _, granted, err := e.store.KV().TimeToLive(e.ctx(), kv.Lease); err != nil || granted != 2*time.Second {
		t.Fatalf("lease granted %v, err %v", granted, err)
	}
	if r := e.do("PUT", "/fleet/v1/kv/tmp/frac", "application/json", `{"value":"v","ttl":"1.2s"}`); r.code != http.StatusOK || !strings.Contains(r.body, `"ttl":2`) {
		t.Fatalf("put ttl 1.2s (rounded up to 2): %d %s", r.code, r.body)
	}
	// A number of seconds works too.
	if r := e.do("PUT", "/fleet/v1/kv/tmp/lease2", "application/json", `{"value":"v","ttl":1}`); r.code != http.StatusOK {
		t.Fatalf("put ttl 1: %d %s", r.code, r.body)
	}
	// Both leases expire: etcd deletes the keys (watched from the
	// revision after the puts, so no deletion is missed), and the API
	// answers 404 for them.
	_, _, rev, err := e.store.KV().Get(e.ctx(), "/tmp/lease2")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(e.ctx(), 30*time.Second)
	defer cancel()
	gone := map[string]bool{}
	for b := range e.store.KV().Watch(wctx, "/tmp/lease", etcdkv.WatchOptions{Prefix: true, FromRev: rev + 1}) {
		if b.Err != nil {
			t.Fatalf("watch: %v", b.Err)
		}
		for _, ev := range b.Events {
			if ev.Type == etcdkv.EventDelete {
				gone[ev.KV.Key] = true
			}
		}
		if gone["/tmp/lease"] && gone["/tmp/lease2"] {
			break
		}
	}
	if !gone["/tmp/lease"] || !gone["/tmp/lease2"] {
		t.Fatalf("keys did not expire within 30s: deleted %v", gone)
	}
	for _, p := range []string{"/fleet/v1/kv/tmp/lease", "/fleet/v1/kv/tmp/lease2"} {
		if r := e.do("GET", p, "", ""); r.code != http.StatusNotFound {
			t.Fatalf("GET %s after expiry: %d %s", p, r.code, r.body)
		}
	}
}

func TestKVBadInput(t *testing.T) {
	e := newEnv(t, 0)
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"PUT", "/fleet/v1/kv/a", `{"value":`, 400, "invalid body"},
		{"PUT", "/fleet/v1/kv/a", `{"val":"x"}`, 400, "unknown field"},
		{"PUT", "/fleet/v1/kv/a", `{"ttl":"1s"}`, 400, `"value" is required`},
		{"PUT", "/fleet/v1/kv/a", `{"value":"x"} {}`, 400, "more than one"},
		{"PUT", "/fleet/v1/kv/a", `{"value":"x","ttl":"soon"}`, 400, `invalid ttl "soon"`},
		{"PUT", "/fleet/v1/kv/a", `{"value":"x","ttl":"-1s"}`, 400, "must be positive"},
		{"PUT", "/fleet/v1/kv/a", `{"value":"x","ttl":true}`, 400, "invalid ttl"},
		{"PUT", "/fleet/v1/kv/a", `{"value":"x","ttl":"9000h"}`, 400, "the limit"},
		{"PUT", "/fleet/v1/kv/", `{"value":"x"}`, 400, "root"},
		{"GET", "/fleet/v1/kv/a?recursive=maybe", "", 400, "invalid recursive"},
		{"PUT", "/fleet/v1/kv/fleet-test/units/evil.service", `{"value":"x"}`, 403, "fleet's own prefix"},
		{"GET", "/fleet/v1/kv/fleet-test/units/evil.service", "", 403, "fleet's own prefix"},
		{"GET", "/fleet/v1/kv/fleet-test?recursive=true", "", 403, "fleet's own prefix"},
		{"DELETE", "/fleet/v1/kv/fleet-test/units/x?recursive=true", "", 403, "fleet's own prefix"},
		{"DELETE", "/fleet/v1/kv/?recursive=true", "", 403, "refusing"},
		{"POST", "/fleet/v1/kv/a", "", 405, "only GET, PUT and DELETE"},
	} {
		r := e.do(tc.method, tc.path, "application/json", tc.body)
		var env struct{ Error struct{ Message string } }
		_ = json.Unmarshal([]byte(r.body), &env)
		if r.code != tc.code || !strings.Contains(env.Error.Message, tc.msg) {
			t.Errorf("%s %s %s: %d %s; want %d with %q", tc.method, tc.path, tc.body, r.code, r.body, tc.code, tc.msg)
		}
	}
	// Nothing was written.
	resp, err := e.store.KV().Raw().Get(e.ctx(), "/", clientGetPrefix()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("bad input wrote %d keys: %v", len(resp.Kvs), resp.Kvs)
	}
}

func TestKVWatch(t *testing.T) {
	e := newEnv(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/fleet/v1/kv/w?wait=true&recursive=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	// The watch is established once the headers are in.
	e.do("PUT", "/fleet/v1/kv/w/a", "application/json", `{"value":"1"}`)
	e.do("PUT", "/fleet/v1/kv/wx", "application/json", `{"value":"not below"}`)
	e.do("DELETE", "/fleet/v1/kv/w/a", "", "")
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 2 && sc.Scan() {
		var ev struct{ Action, Key, Value string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		got = append(got, ev.Action+" "+ev.Key+" "+ev.Value)
	}
	if strings.Join(got, "|") != "set /w/a 1|delete /w/a " {
		t.Fatalf("events %q", got)
	}
}

// readEvents reads n watch lines from body as "action key value".
func readEvents(t *testing.T, sc *bufio.Scanner, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n && sc.Scan() {
		var ev struct{ Action, Key, Value string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		got = append(got, ev.Action+" "+ev.Key+" "+ev.Value)
	}
	return got
}

// startWatch opens a kv watch and returns a scanner over its lines.
func startWatch(t *testing.T, e *env, query string) *bufio.Scanner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/fleet/v1/kv"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("watch %s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return bufio.NewScanner(resp.Body)
}

// TestKVWatchOneKey: without recursive=true only the key itself is
// watched; a recursive watch of the root skips fleet's own keys.
func TestKVWatchOneKey(t *testing.T) {
	e := newEnv(t, 0)
	one := startWatch(t, e, "/k?wait=true")
	root := startWatch(t, e, "/?wait=true&recursive=true")
	e.do("PUT", "/fleet/v1/kv/k/child", "application/json", `{"value":"below"}`)
	if _, err := e.store.KV().Put(e.ctx(), e.store.Prefix()+"units/x", "{}", etcdkv.NoLease); err != nil {
		t.Fatal(err)
	}
	e.do("PUT", "/fleet/v1/kv/k", "application/json", `{"value":"v"}`)
	e.do("DELETE", "/fleet/v1/kv/k", "", "")
	if got := readEvents(t, one, 2); strings.Join(got, "|") != "set /k v|delete /k " {
		t.Fatalf("watch of /k: %q", got)
	}
	if got := readEvents(t, root, 3); strings.Join(got, "|") != "set /k/child below|set /k v|delete /k " {
		t.Fatalf("recursive watch of /: %q", got)
	}
}

func clientGetPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

func TestKVEtcdUnreachable(t *testing.T) {
	srv, eps := etcdtest.NewServer(t)
	st := store.New(etcdkv.New(etcdtest.NewClient(t, eps)), "/fleet-test/")
	h := httptest.NewServer(New(Config{Store: st, MachineID: machineA}).Handler())
	t.Cleanup(h.Close)
	srv.Close()
	r := doURL(t, h.URL, "PUT", "/fleet/v1/kv/a", `{"value":"x","ttl":"5s"}`, contentTypeHeader("application/json"))
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, msgEtcdUnavailable) {
		t.Fatalf("put with etcd down: %d %s", r.code, r.body)
	}
}

func TestPutUnitBadXService(t *testing.T) {
	e := newEnv(t, 0)
	for body, msg := range map[string]string{
		`{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/x"},{"section":"X-Service","name":"Name","value":"web"},{"section":"X-Service","name":"Port","value":"70000"}]}`:                                                  "Port=70000: out of range 1..65535",
		`{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/x"},{"section":"X-Service","name":"Name","value":"web"},{"section":"X-Service","name":"Port","value":"80"},{"section":"X-Service","name":"Health","value":"/"}]}`: `unknown key \"Health\"`,
	} {
		r := e.do("PUT", "/fleet/v1/units/bad.service", "application/json", body)
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, msg) {
			t.Errorf("PUT: %d %s; want 400 with %s", r.code, r.body, msg)
		}
		if r := e.do("GET", "/fleet/v1/units/bad.service", "", ""); r.code != http.StatusNotFound {
			t.Errorf("a refused unit was stored: %d %s", r.code, r.body)
		}
	}
	ok := `{"desiredState":"inactive","options":[{"section":"Service","name":"ExecStart","value":"/x"},{"section":"X-Service","name":"Name","value":"kappa-test"},{"section":"X-Service","name":"Port","value":"800%i"},{"section":"X-Service","name":"CheckHTTP","value":"/"}]}`
	if r := e.do("PUT", "/fleet/v1/units/kappa-test@.service", "application/json", ok); r.code != http.StatusCreated {
		t.Errorf("template: %d %s", r.code, r.body)
	}
}

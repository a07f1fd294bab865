package etcdv2_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/etcdv2"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

type env struct {
	t   *testing.T
	kv  *etcdkv.Client
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kv := etcdkv.New(etcdtest.New(t))
	srv := newV2Server(kv)
	t.Cleanup(srv.Close)
	return &env{t: t, kv: kv, srv: srv}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(method, path string, form url.Values) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

var numRE = regexp.MustCompile(`"(modifiedIndex|createdIndex|index|ttl)":\d+`)
var expRE = regexp.MustCompile(`"expiration":"[^"]*"`)

// blank replaces indexes, TTLs and expirations by placeholders.
func blank(s string) string {
	s = numRE.ReplaceAllString(s, `"$1":N`)
	s = expRE.ReplaceAllString(s, `"expiration":"T"`)
	return strings.TrimSpace(s)
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	v := func(kv ...string) url.Values {
		u := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			u.Set(kv[i], kv[i+1])
		}
		return u
	}
	steps := []struct {
		method, path string
		form         url.Values
		status       int
		body         string
	}{
		{"GET", "/v2/keys/nope", nil, 404, `{"errorCode":100,"message":"Key not found","cause":"/nope","index":N}`},
		{"PUT", "/v2/keys/d?dir=true", nil, 201, `{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/d?dir=true", nil, 403, `{"errorCode":102,"message":"Not a file","cause":"/d","index":N}`},
		{"PUT", "/v2/keys/d/a", v("value", "1"), 201, `{"action":"set","node":{"key":"/d/a","value":"1","modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/d/a", v("value", "2"), 200, `{"action":"set","node":{"key":"/d/a","value":"2","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/a","value":"1","modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/d/a?prevExist=false", v("value", "3"), 412, `{"errorCode":105,"message":"Key already exists","cause":"/d/a","index":N}`},
		{"PUT", "/v2/keys/d/a/b", v("value", "3"), 400, `{"errorCode":104,"message":"Not a directory","cause":"/d/a","index":N}`},
		{"PUT", "/v2/keys/d", v("value", "3"), 403, `{"errorCode":102,"message":"Not a file","cause":"/d","index":N}`},
		{"PUT", "/v2/keys/d/a?prevValue=x", v("value", "3"), 412, `{"errorCode":101,"message":"Compare failed","cause":"[x != 2]","index":N}`},
		{"PUT", "/v2/keys/d/a?prevIndex=1", v("value", "3"), 412, `{"errorCode":101,"message":"Compare failed","cause":"[1 != 4]","index":N}`},
		{"PUT", "/v2/keys/d/a?prevValue=2", v("value", "3"), 200, `{"action":"compareAndSwap","node":{"key":"/d/a","value":"3","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/a","value":"2","modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/d/a?prevExist=true", v("value", "4"), 200, `{"action":"update","node":{"key":"/d/a","value":"4","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/a","value":"3","modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/missing?prevExist=true", v("value", "4"), 404, `{"errorCode":100,"message":"Key not found","cause":"/missing","index":N}`},
		{"PUT", "/v2/keys/d/a?ttl=abc", v("value", "1"), 400, `{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":N}`},
		{"PUT", "/v2/keys/d/a?prevIndex=x", v("value", "1"), 400, `{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"prevIndex\"","index":N}`},
		{"GET", "/v2/keys/d?wait=true&waitIndex=x", nil, 400, `{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"waitIndex\"","index":N}`},
		{"GET", "/v2/keys/d?recursive=maybe", nil, 400, `{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"recursive\"","index":N}`},
		{"PUT", "/v2/keys/d/a?prevExist=maybe", v("value", "1"), 400, `{"errorCode":209,"message":"Invalid field","cause":"invalid value for prevExist","index":N}`},
		{"PUT", "/v2/keys/d/a?prevValue=", v("value", "1"), 400, `{"errorCode":201,"message":"PrevValue is Required in POST form","cause":"\"prevValue\" cannot be empty","index":N}`},
		{"PUT", "/v2/keys/d/a?refresh=true", nil, 400, `{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":N}`},
		{"PUT", "/v2/keys/", v("value", "1"), 400, `{"errorCode":107,"message":"Root is read only","cause":"/","index":N}`},
		{"PUT", "/v2/keys/_coreos.com/fleet/job/x", v("value", "1"), 400, `{"errorCode":107,"message":"Root is read only","cause":"/_coreos.com/fleet/job/x","index":N}`},
		{"DELETE", "/v2/keys/_coreos.com?recursive=true", nil, 400, `{"errorCode":107,"message":"Root is read only","cause":"/_coreos.com","index":N}`},
		{"PUT", "/v2/keys/d/e/f", v("value", "x"), 201, `{"action":"set","node":{"key":"/d/e/f","value":"x","modifiedIndex":N,"createdIndex":N}}`},
		{"GET", "/v2/keys/d", nil, 200, `{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/a","value":"4","modifiedIndex":N,"createdIndex":N},{"key":"/d/e","dir":true,"modifiedIndex":N,"createdIndex":N}],"modifiedIndex":N,"createdIndex":N}}`},
		{"GET", "/v2/keys/d?recursive=true&sorted=true", nil, 200, `{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/a","value":"4","modifiedIndex":N,"createdIndex":N},{"key":"/d/e","dir":true,"nodes":[{"key":"/d/e/f","value":"x","modifiedIndex":N,"createdIndex":N}],"modifiedIndex":N,"createdIndex":N}],"modifiedIndex":N,"createdIndex":N}}`},
		{"DELETE", "/v2/keys/d", nil, 403, `{"errorCode":102,"message":"Not a file","cause":"/d","index":N}`},
		{"DELETE", "/v2/keys/d?dir=true", nil, 403, `{"errorCode":108,"message":"Directory not empty","cause":"/d","index":N}`},
		{"DELETE", "/v2/keys/d/a?prevValue=x", nil, 412, `{"errorCode":101,"message":"Compare failed","cause":"[x != 4]","index":N}`},
		{"DELETE", "/v2/keys/d/a?prevValue=4", nil, 200, `{"action":"compareAndDelete","node":{"key":"/d/a","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/a","value":"4","modifiedIndex":N,"createdIndex":N}}`},
		{"DELETE", "/v2/keys/d/e/f", nil, 200, `{"action":"delete","node":{"key":"/d/e/f","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/e/f","value":"x","modifiedIndex":N,"createdIndex":N}}`},
		{"GET", "/v2/keys/d/e", nil, 200, `{"action":"get","node":{"key":"/d/e","dir":true,"modifiedIndex":N,"createdIndex":N}}`},
		{"DELETE", "/v2/keys/d/e?dir=true", nil, 200, `{"action":"delete","node":{"key":"/d/e","dir":true,"modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d/e","dir":true,"modifiedIndex":N,"createdIndex":N}}`},
		{"PUT", "/v2/keys/d/x/y", v("value", "1"), 201, `{"action":"set","node":{"key":"/d/x/y","value":"1","modifiedIndex":N,"createdIndex":N}}`},
		{"DELETE", "/v2/keys/d?recursive=true", nil, 200, `{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/d","dir":true,"modifiedIndex":N,"createdIndex":N}}`},
		{"DELETE", "/v2/keys/d?recursive=true", nil, 404, `{"errorCode":100,"message":"Key not found","cause":"/d","index":N}`},
		{"GET", "/v2/keys/", nil, 200, `{"action":"get","node":{"dir":true}}`},
		{"PATCH", "/v2/keys/a", nil, 405, `Method Not Allowed`},
	}
	for i, s := range steps {
		r := e.do(s.method, s.path, s.form)
		if r.status != s.status || blank(r.body) != s.body {
			t.Fatalf("step %d: %s %s: %d %s\nwant %d %s", i, s.method, s.path, r.status, blank(r.body), s.status, s.body)
		}
		if s.status != 405 && r.header.Get("X-Etcd-Index") == "" {
			t.Fatalf("step %d: no X-Etcd-Index", i)
		}
		if s.status < 300 && (r.header.Get("X-Raft-Index") == "" || r.header.Get("X-Raft-Term") == "") {
			t.Fatalf("step %d: raft headers %v", i, r.header)
		}
	}
}

func TestPrevIndexCompare(t *testing.T) {
	e := newEnv(t)
	r := e.do("PUT", "/v2/keys/k", url.Values{"value": {"a"}})
	var ev etcdv2.Event
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
		t.Fatal(err)
	}
	idx := ev.Node.ModifiedIndex
	if got := r.header.Get("X-Etcd-Index"); got != itoa(idx) {
		t.Fatalf("X-Etcd-Index %s, node index %d", got, idx)
	}
	r = e.do("PUT", "/v2/keys/k?prevIndex="+itoa(idx+7), url.Values{"value": {"b"}})
	if want := `"cause":"[` + itoa(idx+7) + ` != ` + itoa(idx) + `]"`; r.status != 412 || !strings.Contains(r.body, want) {
		t.Fatalf("%d %s, want %s", r.status, r.body, want)
	}
	r = e.do("PUT", "/v2/keys/k?prevIndex="+itoa(idx), url.Values{"value": {"b"}})
	if r.status != 200 || !strings.Contains(r.body, `"compareAndSwap"`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func itoa(i int64) string { return strconvI(i) }

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	r := e.do("PUT", "/v2/keys/big", url.Values{"value": {strings.Repeat("x", 2<<20)}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestPostInOrder(t *testing.T) {
	e := newEnv(t)
	var keys []string
	for _, v := range []string{"a", "b", "c"} {
		r := e.do("POST", "/v2/keys/q", url.Values{"value": {v}})
		var ev etcdv2.Event
		if err := json.Unmarshal([]byte(r.body), &ev); err != nil || r.status != 201 || ev.Action != "create" {
			t.Fatalf("%d %s %v", r.status, r.body, err)
		}
		if !regexp.MustCompile(`^/q/\d{20}$`).MatchString(ev.Node.Key) {
			t.Fatalf("key %s", ev.Node.Key)
		}
		keys = append(keys, ev.Node.Key)
	}
	r := e.do("GET", "/v2/keys/q?sorted=true", nil)
	var ev etcdv2.Event
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil || len(ev.Node.Nodes) != 3 {
		t.Fatalf("%s %v", r.body, err)
	}
	for i, n := range ev.Node.Nodes {
		if n.Key != keys[i] || *n.Value != string(rune('a'+i)) {
			t.Fatalf("node %d = %s %s, want %s", i, n.Key, *n.Value, keys[i])
		}
	}
}

func TestTTLExpiry(t *testing.T) {
	e := newEnv(t)
	r := e.do("PUT", "/v2/keys/t?ttl=1", url.Values{"value": {"v"}})
	if r.status != 201 || !strings.Contains(r.body, `"ttl":1`) || !strings.Contains(r.body, `"expiration":"`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = e.do("GET", "/v2/keys/t", nil)
	if r.status != 200 || !strings.Contains(r.body, `"ttl":`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.do("GET", "/v2/keys/t", nil).status != 404 {
		if time.Now().After(deadline) {
			t.Fatal("key with ttl=1 still there after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// update without ttl makes a key permanent; a refresh keeps the value.
	e.do("PUT", "/v2/keys/p?ttl=100", url.Values{"value": {"v"}})
	r = e.do("PUT", "/v2/keys/p?ttl=50&refresh=true&prevExist=true", nil)
	if r.status != 200 || !strings.Contains(r.body, `"value":"v"`) || !strings.Contains(r.body, `"ttl":50`) {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	r = e.do("PUT", "/v2/keys/p?prevExist=true", url.Values{"value": {"w"}})
	if r.status != 200 || blank(r.body) != `{"action":"update","node":{"key":"/p","value":"w","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/p","value":"v","expiration":"T","ttl":N,"modifiedIndex":N,"createdIndex":N}}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestAuth(t *testing.T) {
	kv := etcdkv.New(etcdtest.New(t))
	h := etcdv2.New(etcdv2.Config{KV: kv, Auth: etcdv2.TokenAuth(func(tok string) bool { return tok == "sekret" })})
	do := func(method, remote string, set func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/v2/keys/a?value=1", nil)
		req.RemoteAddr = remote
		if set != nil {
			set(req)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := do("GET", "127.0.0.1:5000", nil); w.Code != 404 {
		t.Fatalf("anonymous loopback read: %d %s", w.Code, w.Body)
	}
	if w := do("PUT", "127.0.0.1:5000", nil); w.Code != 401 || !strings.Contains(w.Body.String(), `"errorCode":110`) {
		t.Fatalf("anonymous loopback write: %d %s", w.Code, w.Body)
	}
	if w := do("GET", "10.0.0.1:5000", nil); w.Code != 401 {
		t.Fatalf("anonymous remote read: %d %s", w.Code, w.Body)
	}
	if w := do("PUT", "10.0.0.1:5000", func(r *http.Request) { r.SetBasicAuth("fleet", "sekret") }); w.Code != 201 {
		t.Fatalf("basic auth write: %d %s", w.Code, w.Body)
	}
	if w := do("PUT", "10.0.0.1:5000", func(r *http.Request) { r.Header.Set("Authorization", "Bearer sekret") }); w.Code != 200 {
		t.Fatalf("bearer write: %d %s", w.Code, w.Body)
	}
	if w := do("PUT", "127.0.0.1:5000", func(r *http.Request) { r.SetBasicAuth("fleet", "wrong") }); w.Code != 401 {
		t.Fatalf("wrong token: %d %s", w.Code, w.Body)
	}
}

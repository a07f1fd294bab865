package etcdv2_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/etcdv2"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func index(t *testing.T, r resp) int64 {
	t.Helper()
	var ev etcdv2.Event
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil || ev.Node == nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	return ev.Node.ModifiedIndex
}

func TestWait(t *testing.T) {
	e := newEnv(t)
	i1 := index(t, e.do("PUT", "/v2/keys/w/a", url.Values{"value": {"1"}}))
	e.do("PUT", "/v2/keys/w/a", url.Values{"value": {"2"}})
	e.do("PUT", "/v2/keys/other", url.Values{"value": {"x"}})

	// A past index answers at once with the event at that index.
	r := e.do("GET", "/v2/keys/w/a?wait=true&waitIndex="+strconv.FormatInt(i1, 10), nil)
	if r.status != 200 || blank(r.body) != `{"action":"set","node":{"key":"/w/a","value":"1","modifiedIndex":N,"createdIndex":N}}` {
		t.Fatalf("past wait: %d %s", r.status, r.body)
	}
	if r.header.Get("X-Etcd-Index") == "" || r.header.Get("X-Raft-Term") == "" {
		t.Fatalf("headers %v", r.header)
	}
	// Recursive from the next index sees the change of a key under it.
	r = e.do("GET", "/v2/keys/w?wait=true&recursive=true&waitIndex="+strconv.FormatInt(i1+1, 10), nil)
	if r.status != 200 || blank(r.body) != `{"action":"set","node":{"key":"/w/a","value":"2","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/w/a","value":"1","modifiedIndex":N,"createdIndex":N}}` {
		t.Fatalf("recursive wait: %d %s", r.status, r.body)
	}

	// A wait without index blocks until the next write.
	got := make(chan resp, 1)
	go func() { got <- e.do("GET", "/v2/keys/w/a?wait=true", nil) }()
	select {
	case r := <-got:
		t.Fatalf("wait returned before a write: %d %s", r.status, r.body)
	case <-time.After(500 * time.Millisecond):
	}
	e.do("PUT", "/v2/keys/w/b", url.Values{"value": {"not this"}})
	e.do("DELETE", "/v2/keys/w/a", nil)
	select {
	case r := <-got:
		if r.status != 200 || blank(r.body) != `{"action":"delete","node":{"key":"/w/a","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/w/a","value":"2","modifiedIndex":N,"createdIndex":N}}` {
			t.Fatalf("future wait: %d %s", r.status, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after a write")
	}
}

func TestWaitCompacted(t *testing.T) {
	raw := etcdtest.New(t)
	kv := etcdkv.New(raw)
	srv := httptest.NewServer(etcdv2.New(etcdv2.Config{KV: kv}))
	defer srv.Close()
	e := &env{t: t, kv: kv, srv: srv}
	var last int64
	for i := range 5 {
		last = index(t, e.do("PUT", "/v2/keys/c", url.Values{"value": {strconv.Itoa(i)}}))
	}
	if _, err := raw.Compact(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v2/keys/c?wait=true&waitIndex=2", nil)
	want := `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [` +
		strconv.FormatInt(last, 10) + `/2]","index":` + strconv.FormatInt(last, 10) + `}`
	if r.status != http.StatusBadRequest || strings.TrimSpace(r.body) != want {
		t.Fatalf("%d %s\nwant 400 %s", r.status, r.body, want)
	}
}

func TestExpireEvent(t *testing.T) {
	e := newEnv(t)
	i := index(t, e.do("PUT", "/v2/keys/x?ttl=1", url.Values{"value": {"v"}}))
	r := e.do("GET", "/v2/keys/x?wait=true&waitIndex="+strconv.FormatInt(i+1, 10), nil)
	if r.status != 200 || blank(r.body) != `{"action":"expire","node":{"key":"/x","modifiedIndex":N,"createdIndex":N},"prevNode":{"key":"/x","value":"v","modifiedIndex":N,"createdIndex":N}}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestMembersAndStats(t *testing.T) {
	e := newEnv(t)
	checks := []struct{ path, want string }{
		{"/v2/members", `{"members":[{"id":"`},
		{"/v2/members/leader", `"clientURLs":["` + e.srv.URL + `"]`},
		{"/v2/machines", e.srv.URL},
		{"/version", `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`},
		{"/health", `{"health":"true"}`},
		{"/v2/stats/self", `"state":"StateLeader"`},
		{"/v2/stats/leader", `"followers":{}`},
		{"/v2/stats/store", `"getsSuccess":0`},
	}
	for _, c := range checks {
		r := e.do("GET", c.path, nil)
		if r.status != 200 || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: %d %s, want %s", c.path, r.status, r.body, c.want)
		}
	}
	r := e.do("GET", "/v2/members", nil)
	if !strings.Contains(r.body, `"clientURLs":["`+e.srv.URL+`"]`) {
		t.Errorf("members %s: clientURLs should be the v2 listener", r.body)
	}
	// etcd 0.4's /v2/leader (seed 004): the leader's peer URL, as text.
	l := e.do("GET", "/v2/leader", nil)
	if l.status != 200 || !strings.HasPrefix(l.body, "http") || !strings.Contains(r.body, `"peerURLs":["`+l.body+`"]`) {
		t.Errorf("/v2/leader: %d %q, want the peer URL of the leader in %s", l.status, l.body, r.body)
	}
}

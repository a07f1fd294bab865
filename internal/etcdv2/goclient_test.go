package etcdv2_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/etcdv2"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// wantCode fails unless err is a client.Error (the v2 client returns it
// by value) with the given errorCode.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var cerr client.Error
	if !errors.As(err, &cerr) || cerr.Code != code {
		t.Fatalf("%s: error %v (%T), want client.Error with code %d", what, err, err, code)
	}
}

// TestGoClientV2 drives the handler with go.etcd.io/etcd/client/v2, the
// v2 client that confd and registrator embed, authenticated as fleet's
// token.
func TestGoClientV2(t *testing.T) {
	const token = "sekret"
	raw := etcdtest.New(t)
	kv := etcdkv.New(raw)
	srv := httptest.NewUnstartedServer(nil)
	srvURL := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = etcdv2.New(etcdv2.Config{
		KV:         kv,
		ClientURLs: []string{srvURL},
		Auth:       etcdv2.TokenAuth(func(tok string) bool { return tok == token }),
	})
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := client.New(client.Config{
		Endpoints:               []string{srvURL},
		Username:                "fleet",
		Password:                token,
		HeaderTimeoutPerRequest: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	kapi := client.NewKeysAPI(c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Without the token a write is refused (errorCode 110).
	anon, err := client.New(client.Config{Endpoints: []string{srvURL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.NewKeysAPI(anon).Set(ctx, "/g/anon", "x", nil)
	wantCode(t, "anonymous set", err, client.ErrorCodeUnauthorized)

	// Set and Get.
	r, err := kapi.Set(ctx, "/g/b", "2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != "set" || r.Node.Key != "/g/b" || r.Node.Value != "2" || r.Node.ModifiedIndex == 0 || r.Index == 0 {
		t.Fatalf("set: %+v %+v", r, r.Node)
	}
	if _, err := kapi.Set(ctx, "/g/a", "1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kapi.Set(ctx, "/g/c/d", "3", nil); err != nil {
		t.Fatal(err)
	}
	r, err = kapi.Get(ctx, "/g/b", nil)
	if err != nil || r.Action != "get" || r.Node.Value != "2" {
		t.Fatalf("get: %v %+v", err, r)
	}
	_, err = kapi.Get(ctx, "/g/missing", nil)
	wantCode(t, "get missing", err, client.ErrorCodeKeyNotFound)
	if !client.IsKeyNotFound(err) {
		t.Fatalf("IsKeyNotFound(%v) = false", err)
	}

	// Recursive sorted Get.
	r, err = kapi.Get(ctx, "/g", &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Node.Dir || r.Node.Key != "/g" || len(r.Node.Nodes) != 3 {
		t.Fatalf("recursive get: %+v", r.Node)
	}
	want := []struct {
		key, value string
		dir        bool
	}{{"/g/a", "1", false}, {"/g/b", "2", false}, {"/g/c", "", true}}
	for i, w := range want {
		n := r.Node.Nodes[i]
		if n.Key != w.key || n.Value != w.value || n.Dir != w.dir {
			t.Fatalf("node %d = %+v, want %+v", i, n, w)
		}
	}
	if sub := r.Node.Nodes[2].Nodes; len(sub) != 1 || sub[0].Key != "/g/c/d" || sub[0].Value != "3" {
		t.Fatalf("recursive get /g/c: %+v", r.Node.Nodes[2])
	}

	// Create on an existing key: 105.
	_, err = kapi.Create(ctx, "/g/a", "x")
	wantCode(t, "create existing", err, client.ErrorCodeNodeExist)
	r, err = kapi.Create(ctx, "/g/new", "n")
	if err != nil || r.Action != "create" || r.Node.Value != "n" {
		t.Fatalf("create: %v %+v", err, r)
	}

	// Compare-and-swap: a PrevValue mismatch is 101, a match swaps.
	_, err = kapi.Set(ctx, "/g/a", "x", &client.SetOptions{PrevValue: "nope"})
	wantCode(t, "prevValue mismatch", err, client.ErrorCodeTestFailed)
	r, err = kapi.Set(ctx, "/g/a", "11", &client.SetOptions{PrevValue: "1"})
	if err != nil || r.Action != "compareAndSwap" || r.Node.Value != "11" || r.PrevNode == nil || r.PrevNode.Value != "1" {
		t.Fatalf("cas: %v %+v", err, r)
	}

	// Set with a TTL, then expiry.
	r, err = kapi.Set(ctx, "/g/ttl", "v", &client.SetOptions{TTL: time.Second})
	if err != nil || r.Node.TTL != 1 || r.Node.Expiration == nil {
		t.Fatalf("set ttl: %v %+v", err, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := kapi.Get(ctx, "/g/ttl", nil)
		if client.IsKeyNotFound(err) {
			break
		}
		if err != nil {
			t.Fatalf("get ttl key: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("key with ttl=1s still there after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Set Dir.
	r, err = kapi.Set(ctx, "/g/dir", "", &client.SetOptions{Dir: true})
	if err != nil || !r.Node.Dir || r.Node.Key != "/g/dir" {
		t.Fatalf("set dir: %v %+v", err, r)
	}
	r, err = kapi.Get(ctx, "/g/dir", nil)
	if err != nil || !r.Node.Dir || len(r.Node.Nodes) != 0 {
		t.Fatalf("get dir: %v %+v", err, r)
	}
	_, err = kapi.Set(ctx, "/g/dir", "", &client.SetOptions{Dir: true})
	wantCode(t, "set dir again", err, client.ErrorCodeNotFile)

	// Watcher(AfterIndex) receives a later Set.
	r, err = kapi.Get(ctx, "/g/b", nil)
	if err != nil {
		t.Fatal(err)
	}
	after := r.Index
	type result struct {
		r   *client.Response
		err error
	}
	got := make(chan result, 1)
	w := kapi.Watcher("/g/b", &client.WatcherOptions{AfterIndex: after})
	go func() {
		r, err := w.Next(ctx)
		got <- result{r, err}
	}()
	select {
	case res := <-got:
		t.Fatalf("watcher returned before a write: %v %+v", res.err, res.r)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := kapi.Set(ctx, "/g/a", "not this", nil); err != nil {
		t.Fatal(err)
	}
	set, err := kapi.Set(ctx, "/g/b", "22", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-got:
		if res.err != nil {
			t.Fatalf("watch: %v", res.err)
		}
		if res.r.Action != "set" || res.r.Node.Key != "/g/b" || res.r.Node.Value != "22" ||
			res.r.Node.ModifiedIndex != set.Node.ModifiedIndex || res.r.Node.ModifiedIndex <= after {
			t.Fatalf("watch event %+v %+v, want the set at %d", res.r, res.r.Node, set.Node.ModifiedIndex)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not return after a write")
	}

	// Delete recursive.
	_, err = kapi.Delete(ctx, "/g", nil)
	wantCode(t, "delete dir without recursive", err, client.ErrorCodeNotFile)
	r, err = kapi.Delete(ctx, "/g", &client.DeleteOptions{Recursive: true})
	if err != nil || r.Action != "delete" || r.Node.Key != "/g" {
		t.Fatalf("delete recursive: %v %+v", err, r)
	}
	for _, k := range []string{"/g", "/g/a", "/g/c/d", "/g/dir"} {
		_, err = kapi.Get(ctx, k, nil)
		wantCode(t, "get "+k+" after delete", err, client.ErrorCodeKeyNotFound)
	}

	// A watcher from a compacted index: 401.
	var last uint64
	for _, v := range []string{"1", "2", "3"} {
		r, err := kapi.Set(ctx, "/h", v, nil)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Node.ModifiedIndex
	}
	if _, err := raw.Compact(ctx, int64(last)); err != nil {
		t.Fatal(err)
	}
	_, err = kapi.Watcher("/h", &client.WatcherOptions{AfterIndex: 1}).Next(ctx)
	wantCode(t, "watch compacted", err, client.ErrorCodeEventIndexCleared)

	// Members.
	ms, err := client.NewMembersAPI(c).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID == "" || len(ms[0].ClientURLs) != 1 || ms[0].ClientURLs[0] != srvURL {
		t.Fatalf("members %+v, want one member with client URL %s", ms, srvURL)
	}
}

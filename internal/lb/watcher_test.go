package lb

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestWatcherInitialSetBadValuesAndScope(t *testing.T) {
	cli := etcdtest.New(t)
	kv := etcdKV{t, cli}
	kv.put("/services/web/m1:web:80", "10.0.0.1:80")
	kv.put("/services/web/m2:web:80", "garbage")
	kv.put("/services/web2/m1:web2:80", "10.0.0.9:80")
	kv.put("/services/web", "10.0.0.8:80")
	var logs syncBuf
	var mu sync.Mutex
	var updates [][]Backend
	w := NewWatcher(WatcherConfig{Client: cli, Prefix: "/services/web", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Update: func(b []Backend) { mu.Lock(); updates = append(updates, b); mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-w.Ready()
	last := func() []Backend { mu.Lock(); defer mu.Unlock(); return updates[len(updates)-1] }
	if got := last(); len(got) != 1 || got[0] != (Backend{"m1:web:80", "10.0.0.1:80"}) {
		t.Fatalf("initial set = %v", got)
	}
	if !strings.Contains(logs.String(), "/services/web/m2:web:80") {
		t.Fatalf("no warning naming the bad key; logs:\n%s", logs.String())
	}
	// A burst of changes lands as a full set.
	for _, id := range []string{"a", "b", "c", "d"} {
		kv.put("/services/web/"+id, "10.0.1.1:80")
	}
	kv.put("/services/web/m2:web:80", "10.0.0.2:8080")
	kv.del("/services/web/m1:web:80")
	eventually(t, "burst applied", func() bool { return len(last()) == 5 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run = %v", err)
	}
}

func TestWatcherResyncsAfterCompaction(t *testing.T) {
	cli := etcdtest.New(t)
	kv := etcdKV{t, cli}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	kv.put("/services/web/a", "10.0.0.1:80")
	resp, err := cli.Get(ctx, "/services/web/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	old := resp.Header.Revision
	kv.put("/services/web/b", "10.0.0.2:80")
	r2, err := cli.Put(ctx, "/other", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, r2.Header.Revision); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(WatcherConfig{Client: cli, Prefix: "/services/web/"})
	err = w.watch(ctx, map[string]Backend{}, old)
	if err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("watch from a compacted revision = %v, want a compaction error", err)
	}
	// Run re-reads and carries on: both keys present.
	var mu sync.Mutex
	var got []Backend
	w = NewWatcher(WatcherConfig{Client: cli, Prefix: "/services/web/", Update: func(b []Backend) { mu.Lock(); got = b; mu.Unlock() }})
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go w.Run(rctx)
	eventually(t, "both keys", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
}

func TestWatcherUnreachableEtcdRetries(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + refusedAddr(t)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var logs syncBuf
	w := NewWatcher(WatcherConfig{Client: cli, Prefix: "/services/web/", RequestTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	eventually(t, "two retry lines", func() bool { return strings.Count(logs.String(), "etcd unreachable, retrying") >= 2 })
	if w.LastError() == nil {
		t.Fatal("LastError is nil")
	}
	select {
	case <-w.Ready():
		t.Fatal("ready without etcd")
	default:
	}
	cancel()
	<-done
}

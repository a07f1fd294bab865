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
	"github.com/fleetd/fleet/internal/store/etcdkv"
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
	w := NewWatcher(WatcherConfig{Client: etcdkv.New(cli), Prefix: "/services/web", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
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

// A compacted or failed watch is re-read by etcdkv.Mirror (its own tests,
// TestMirrorRereadsAfterCompaction); the watcher only maps keys to backends.

func TestWatcherUnreachableEtcdRetries(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + refusedAddr(t)}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var logs syncBuf
	w := NewWatcher(WatcherConfig{Client: etcdkv.New(cli, etcdkv.WithTimeout(200*time.Millisecond)), Prefix: "/services/web/",
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

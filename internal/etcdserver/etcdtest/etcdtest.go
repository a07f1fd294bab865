// Package etcdtest starts throw-away embedded etcd members for tests.
package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/etcdserver"
)

// New starts a fresh single-node etcd (see NewServer) and returns a client
// connected to it. Both are closed when the test ends.
func New(t testing.TB) *clientv3.Client {
	t.Helper()
	_, endpoints := NewServer(t)
	return NewClient(t, endpoints)
}

// NewClient returns a client of endpoints, closed when the test ends.
func NewClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// NewServer starts a fresh single-node etcd on 127.0.0.1 port 0 with its data
// in t.TempDir(), fast raft ticks and no fsync, and returns it with its client
// endpoints. It is closed when the test ends.
func NewServer(t testing.TB) (*etcdserver.Server, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		Name:                    "etcdtest",
		DataDir:                 t.TempDir(),
		ListenClientURLs:        []string{"http://127.0.0.1:0"},
		ListenPeerURLs:          []string{"http://127.0.0.1:0"},
		TickMs:                  10,
		ElectionMs:              100,
		UnsafeNoFsync:           true,
		AutoCompactionRetention: "0",
	})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, srv.ClientURLs()
}

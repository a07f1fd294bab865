package docker

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/registry"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func newEtcd(t *testing.T) *clientv3.Client { return etcdtest.New(t) }

// newRegistry runs a registry on a kept-alive lease.
func newRegistry(t *testing.T, cli *clientv3.Client) *registry.Registry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
		}
	}()
	reg := registry.New(registry.Config{
		Client: etcdkv.New(cli), MachineID: "m1", PublicIP: "127.0.0.1", Hostname: "host1",
		Lease: func() etcdkv.LeaseID { return etcdkv.LeaseID(l.ID) },
	})
	done := make(chan struct{})
	go func() { _ = reg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

// awaitKey waits until key has value want ("" = absent): it reads key,
// then watches it from the next revision, so no change is missed.
func awaitKey(t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	if len(resp.Kvs) > 0 {
		got = string(resp.Kvs[0].Value)
	}
	if got == want {
		return
	}
	for wr := range cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
		if wr.Err() != nil {
			break
		}
		for _, ev := range wr.Events {
			got = string(ev.Kv.Value)
			if ev.Type == clientv3.EventTypeDelete {
				got = ""
			}
			if got == want {
				return
			}
		}
	}
	t.Fatalf("%s = %q, want %q", key, got, want)
}

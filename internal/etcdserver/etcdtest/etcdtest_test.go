package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
)

func TestNew(t *testing.T) {
	cli := etcdtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get k = %v, want v", resp.Kvs)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a := etcdtest.New(t)
	b := etcdtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := a.Put(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	resp, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("second server sees the first one's key: %v", resp.Kvs)
	}
}

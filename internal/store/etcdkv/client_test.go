package etcdkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func newClient(t *testing.T) *etcdkv.Client {
	t.Helper()
	return etcdkv.New(etcdtest.New(t))
}

func TestGetPutListDelete(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	if _, found, rev, err := c.Get(ctx, "/a/x"); err != nil || found || rev == 0 {
		t.Fatalf("get of a missing key: found %v rev %d err %v", found, rev, err)
	}
	r1, err := c.Put(ctx, "/a/x", "1", etcdkv.NoLease)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := c.Put(ctx, "/a/y", "2", etcdkv.NoLease)
	c.Put(ctx, "/ab", "sibling", etcdkv.NoLease)
	c.Put(ctx, "/a/x", "1b", etcdkv.NoLease)
	kv, found, _, err := c.Get(ctx, "/a/x")
	if err != nil || !found || string(kv.Value) != "1b" || kv.CreateRev != r1 || kv.Version != 2 || kv.ModRev <= r2 {
		t.Fatalf("get /a/x = %+v found %v err %v (created at %d)", kv, found, err, r1)
	}
	l, err := c.List(ctx, "/a/", etcdkv.ListOptions{})
	if err != nil || len(l.KVs) != 2 || l.KVs[0].Key != "/a/x" || l.KVs[1].Key != "/a/y" || l.Count != 2 {
		t.Fatalf("list /a/ = %+v err %v", l, err)
	}
	l, err = c.List(ctx, "/a/", etcdkv.ListOptions{Limit: 1})
	if err != nil || len(l.KVs) != 1 || !l.More {
		t.Fatalf("list /a/ limit 1 = %+v err %v", l, err)
	}
	l, err = c.List(ctx, "/a/", etcdkv.ListOptions{From: "/a/y"})
	if err != nil || len(l.KVs) != 1 || l.KVs[0].Key != "/a/y" {
		t.Fatalf("list /a/ from /a/y = %+v err %v", l, err)
	}
	l, err = c.List(ctx, "/a/", etcdkv.ListOptions{Rev: r1})
	if err != nil || len(l.KVs) != 1 || string(l.KVs[0].Value) != "1" {
		t.Fatalf("list /a/ at %d = %+v err %v", r1, l, err)
	}
	kvs, rev, err := c.ListPrefixes(ctx, []string{"/a/y", "/a/x"})
	if err != nil || len(kvs) != 2 || kvs[0].Key != "/a/y" || kvs[1].Key != "/a/x" || rev < r2 {
		t.Fatalf("list prefixes = %+v rev %d err %v", kvs, rev, err)
	}
	n, _, err := c.Delete(ctx, "/a/", true)
	if err != nil || n != 2 {
		t.Fatalf("delete /a/ prefix: %d %v", n, err)
	}
	if _, found, _, _ := c.Get(ctx, "/ab"); !found {
		t.Fatal("deleting the prefix /a/ deleted /ab")
	}
}

func TestTxnConditions(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	res, err := c.Txn(ctx, []etcdkv.Cond{etcdkv.Absent("/k")}, etcdkv.PutOp("/k", "v1", etcdkv.NoLease))
	if err != nil || !res.Succeeded {
		t.Fatalf("create: %+v %v", res, err)
	}
	created := res.Rev
	// Create-only fails on an existing key and says what is there.
	res, err = c.Txn(ctx, []etcdkv.Cond{etcdkv.Absent("/k")}, etcdkv.PutOp("/k", "v2", etcdkv.NoLease))
	if err != nil || res.Succeeded || string(res.Current["/k"].Value) != "v1" {
		t.Fatalf("second create: %+v %v", res, err)
	}
	for _, tc := range []struct {
		name string
		cond etcdkv.Cond
		want bool
	}{
		{"exists", etcdkv.Exists("/k"), true},
		{"exists missing", etcdkv.Exists("/missing"), false},
		{"value", etcdkv.ValueIs("/k", "v1"), true},
		{"wrong value", etcdkv.ValueIs("/k", "v0"), false},
		{"mod rev", etcdkv.ModRevIs("/k", created), true},
		{"wrong mod rev", etcdkv.ModRevIs("/k", created-1), false},
		{"create rev", etcdkv.CreateRevIs("/k", created), true},
		{"no lease", etcdkv.LeaseIs("/k", etcdkv.NoLease), true},
		{"wrong lease", etcdkv.LeaseIs("/k", 42), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Txn(ctx, []etcdkv.Cond{tc.cond}, etcdkv.PutOp("/probe", tc.name, etcdkv.NoLease))
			if err != nil || res.Succeeded != tc.want {
				t.Fatalf("%s: succeeded %v, want %v (err %v)", tc.cond, res.Succeeded, tc.want, err)
			}
		})
	}
	c.Put(ctx, "/d/1", "", etcdkv.NoLease)
	c.Put(ctx, "/d/2", "", etcdkv.NoLease)
	res, err = c.Txn(ctx, []etcdkv.Cond{etcdkv.Exists("/k")}, etcdkv.DeleteOp("/k"), etcdkv.DeletePrefixOp("/d/"))
	if err != nil || !res.Succeeded || res.Deleted != 3 {
		t.Fatalf("deletes: %+v %v", res, err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	l, err := c.Grant(ctx, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, granted, err := c.TimeToLive(ctx, l); err != nil || granted != 2*time.Second {
		t.Fatalf("granted %v (want 1.5 s rounded up to 2 s), err %v", granted, err)
	}
	if _, err := c.Put(ctx, "/leased", "x", l); err != nil {
		t.Fatal(err)
	}
	kv, _, _, _ := c.Get(ctx, "/leased")
	if kv.Lease != l {
		t.Fatalf("key on lease %x, want %x", kv.Lease, l)
	}
	if ttl, err := c.KeepAliveOnce(ctx, l); err != nil || ttl != 2*time.Second {
		t.Fatalf("keepalive: %v %v", ttl, err)
	}
	if err := c.Revoke(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, found, _, _ := c.Get(ctx, "/leased"); found {
		t.Fatal("key outlived its revoked lease")
	}
	if _, _, err := c.TimeToLive(ctx, l); !errors.Is(err, etcdkv.ErrLeaseNotFound) {
		t.Fatalf("time to live of a revoked lease: %v", err)
	}
	if _, err := c.KeepAliveOnce(ctx, l); !errors.Is(err, etcdkv.ErrLeaseNotFound) {
		t.Fatalf("keepalive of a revoked lease: %v", err)
	}
}

func TestStatusAndMembers(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	st, err := c.Status(ctx)
	if err != nil || !st.IsLeader() || st.DBSize <= 0 || st.Revision == 0 || len(st.Alarms) != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != st.MemberID || len(ms[0].ClientURLs) == 0 {
		t.Fatalf("members %+v %v", ms, err)
	}
}

func TestAlarmsEmpty(t *testing.T) {
	c := newClient(t)
	if as, err := c.Alarms(context.Background()); err != nil || len(as) != 0 {
		t.Fatalf("alarms of a fresh etcd: %v %v", as, err)
	}
}

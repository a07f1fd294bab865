package etcdkv_test

import (
	"context"
	"testing"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func TestReadKeys(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	for _, k := range []string{"/a", "/b/", "/b/x", "/b/y", "/c/z"} {
		if _, err := c.Put(ctx, k, "v"+k, etcdkv.NoLease); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := c.ReadKeys(ctx, []string{"/a", "/missing", "/b/"}, []string{"/b/", "/c/", "/d/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Keys) != 2 || string(rs.Keys["/a"].Value) != "v/a" || rs.Keys["/b/"].Key != "/b/" {
		t.Fatalf("keys = %+v", rs.Keys)
	}
	if rs.First["/b/"].Key != "/b/" || !rs.More["/b/"] || rs.First["/c/"].Key != "/c/z" || rs.More["/c/"] {
		t.Fatalf("first = %+v more %v", rs.First, rs.More)
	}
	if _, ok := rs.First["/d/"]; ok || rs.Rev == 0 {
		t.Fatalf("first = %+v rev %d", rs.First, rs.Rev)
	}
	idx, term, err := c.RaftStatus(ctx)
	if err != nil || idx == 0 || term == 0 {
		t.Fatalf("raft status = %d %d %v", idx, term, err)
	}
}

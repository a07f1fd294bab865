package etcdkv_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// TestMirrorListOnly: the ListOnly prefixes are read with the watched ones,
// at the same revision and after them in Reset, but their changes are not
// applied.
func TestMirrorListOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t)
	c.Put(ctx, "/lo/w/1", "w1", etcdkv.NoLease)
	c.Put(ctx, "/lo/l/1", "l1", etcdkv.NoLease)
	c.Put(ctx, "/lo/x/1", "neither", etcdkv.NoLease)
	h := newCopyHandler()
	cfg := h.config()
	prefixes := make([]string, 1, 4) // spare capacity: Mirror must not write into it
	prefixes[0] = "/lo/w/"
	cfg.Prefixes = prefixes
	cfg.ListOnly = []string{"/lo/l/"}
	var mu sync.Mutex
	var order []string
	var applied []string
	reset := cfg.Reset
	cfg.Reset = func(kvs []etcdkv.KV, rev int64) {
		mu.Lock()
		order = order[:0]
		for _, kv := range kvs {
			order = append(order, kv.Key)
		}
		mu.Unlock()
		reset(kvs, rev)
	}
	apply := cfg.Apply
	cfg.Apply = func(b etcdkv.WatchBatch) {
		mu.Lock()
		for _, e := range b.Events {
			applied = append(applied, e.KV.Key)
		}
		mu.Unlock()
		apply(b)
	}
	go etcdkv.Mirror(ctx, c, cfg)
	h.waitChanged(t)
	mu.Lock()
	if len(order) != 2 || order[0] != "/lo/w/1" || order[1] != "/lo/l/1" {
		t.Fatalf("Reset got %v, want [/lo/w/1 /lo/l/1]", order)
	}
	mu.Unlock()

	c.Put(ctx, "/lo/l/2", "not watched", etcdkv.NoLease)
	c.Put(ctx, "/lo/w/2", "w2", etcdkv.NoLease)
	want := map[string]string{"/lo/w/1": "w1", "/lo/l/1": "l1", "/lo/w/2": "w2"}
	deadline := time.Now().Add(10 * time.Second)
	for !maps.Equal(h.snapshot(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("copy %v, want %v", h.snapshot(), want)
		}
		h.waitChanged(t)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 1 || applied[0] != "/lo/w/2" {
		t.Fatalf("applied %v, want only /lo/w/2", applied)
	}
	if spare := prefixes[:2][1]; spare != "" {
		t.Fatalf("Mirror appended %q to the caller's Prefixes", spare)
	}
}

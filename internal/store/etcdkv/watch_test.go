package etcdkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

func next(t *testing.T, ch <-chan etcdkv.WatchBatch) etcdkv.WatchBatch {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no watch batch in 10 s")
	}
	panic("unreachable")
}

func TestWatchFromRevisionWithPrev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t)
	r1, _ := c.Put(ctx, "/w/a", "1", etcdkv.NoLease)
	c.Put(ctx, "/w/a", "2", etcdkv.NoLease)
	c.Put(ctx, "/wx", "sibling", etcdkv.NoLease)
	c.Delete(ctx, "/w/a", false)

	ch := c.Watch(ctx, "/w/", etcdkv.WatchOptions{Prefix: true, FromRev: r1, PrevKV: true})
	var evs []etcdkv.Event
	for len(evs) < 3 {
		b := next(t, ch)
		if b.Err != nil || b.Key != "/w/" {
			t.Fatalf("batch %+v", b)
		}
		evs = append(evs, b.Events...)
	}
	if evs[0].Type != etcdkv.EventPut || string(evs[0].KV.Value) != "1" || evs[0].Prev != nil {
		t.Fatalf("first event %+v", evs[0])
	}
	if evs[1].Type != etcdkv.EventPut || string(evs[1].Prev.Value) != "1" {
		t.Fatalf("second event %+v", evs[1])
	}
	if evs[2].Type != etcdkv.EventDelete || evs[2].KV.Key != "/w/a" || string(evs[2].Prev.Value) != "2" {
		t.Fatalf("third event %+v", evs[2])
	}
	cancel()
	for range ch {
	}
}

func TestWatchOfCompactedRevisionEnds(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	r1, _ := c.Put(ctx, "/c/a", "1", etcdkv.NoLease)
	r2, _ := c.Put(ctx, "/c/a", "2", etcdkv.NoLease)
	if _, err := c.Raw().Compact(ctx, r2); err != nil {
		t.Fatal(err)
	}
	ch := c.Watch(ctx, "/c/", etcdkv.WatchOptions{Prefix: true, FromRev: r1})
	b := next(t, ch)
	if !errors.Is(b.Err, etcdkv.ErrCompacted) || !etcdkv.IsCompacted(b.Err) || b.Compacted != r2 {
		t.Fatalf("batch %+v, want ErrCompacted at %d", b, r2)
	}
	if _, ok := <-ch; ok {
		t.Fatal("the channel stays open after the last batch")
	}
	if _, err := c.List(ctx, "/c/", etcdkv.ListOptions{Rev: r1}); !errors.Is(err, etcdkv.ErrCompacted) {
		t.Fatalf("list at a compacted revision: %v", err)
	}
}

func TestWatchEndsWhenClientCloses(t *testing.T) {
	c := newClient(t)
	// A watch from the revision of a put carries that put first: once it
	// has, the watch is running when the client closes.
	rev, err := c.Put(context.Background(), "/x", "1", etcdkv.NoLease)
	if err != nil {
		t.Fatal(err)
	}
	ch := c.Watch(context.Background(), "/x", etcdkv.WatchOptions{FromRev: rev})
	if b := next(t, ch); b.Err != nil || len(b.Events) != 1 || b.Events[0].KV.ModRev != rev {
		t.Fatalf("first batch %+v, want the put at %d", b, rev)
	}
	c.Close()
	b := next(t, ch)
	if b.Err == nil {
		t.Fatalf("batch %+v after close, want an error", b)
	}
}

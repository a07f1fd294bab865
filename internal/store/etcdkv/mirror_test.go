package etcdkv_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// manualClock hands out timers the test fires.
type manualClock struct {
	mu     sync.Mutex
	timers []chan time.Time
	asked  chan time.Duration
}

func newManualClock() *manualClock { return &manualClock{asked: make(chan time.Duration, 100)} }

func (m *manualClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	m.mu.Lock()
	m.timers = append(m.timers, ch)
	m.mu.Unlock()
	m.asked <- d
	return ch
}

// fire fires every timer handed out so far.
func (m *manualClock) fire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.timers {
		select {
		case ch <- time.Now():
		default:
		}
	}
	m.timers = nil
}

// copyHandler keeps a map copy of the mirrored keys and reports calls.
type copyHandler struct {
	mu      sync.Mutex
	state   map[string]string
	resets  int
	changed chan int64
	onReset func(n int)
}

func newCopyHandler() *copyHandler {
	return &copyHandler{state: map[string]string{}, changed: make(chan int64, 100)}
}

func (h *copyHandler) config(prefixes ...string) etcdkv.MirrorConfig {
	return etcdkv.MirrorConfig{
		Prefixes: prefixes,
		Reset: func(kvs []etcdkv.KV, rev int64) {
			h.mu.Lock()
			h.resets++
			n := h.resets
			h.state = map[string]string{}
			for _, kv := range kvs {
				h.state[kv.Key] = string(kv.Value)
			}
			h.mu.Unlock()
			if h.onReset != nil {
				h.onReset(n)
			}
		},
		Apply: func(b etcdkv.WatchBatch) {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, e := range b.Events {
				if e.Type == etcdkv.EventDelete {
					delete(h.state, e.KV.Key)
				} else {
					h.state[e.KV.Key] = string(e.KV.Value)
				}
			}
		},
		Changed: func(rev int64) { h.changed <- rev },
	}
}

func (h *copyHandler) snapshot() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.state)
}

func (h *copyHandler) waitChanged(t *testing.T) int64 {
	t.Helper()
	select {
	case rev := <-h.changed:
		return rev
	case <-time.After(10 * time.Second):
		t.Fatal("Changed not called in 10 s")
	}
	return 0
}

func TestMirrorFollowsSeveralPrefixes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := newClient(t)
	c.Put(ctx, "/m/a/1", "a1", etcdkv.NoLease)
	c.Put(ctx, "/m/b/1", "b1", etcdkv.NoLease)
	c.Put(ctx, "/m/c/1", "not mirrored", etcdkv.NoLease)
	h := newCopyHandler()
	done := make(chan error)
	go func() { done <- etcdkv.Mirror(ctx, c, h.config("/m/a/", "/m/b/")) }()
	h.waitChanged(t)
	if got := h.snapshot(); len(got) != 2 || got["/m/a/1"] != "a1" || got["/m/b/1"] != "b1" {
		t.Fatalf("after the first read: %v", got)
	}
	c.Put(ctx, "/m/a/2", "a2", etcdkv.NoLease)
	c.Delete(ctx, "/m/b/1", false)
	last, _ := c.Put(ctx, "/m/c/2", "not mirrored", etcdkv.NoLease)
	c.Put(ctx, "/m/b/2", "b2", etcdkv.NoLease)
	want := map[string]string{"/m/a/1": "a1", "/m/a/2": "a2", "/m/b/2": "b2"}
	for !maps.Equal(h.snapshot(), want) {
		if rev := h.waitChanged(t); rev > last+1 {
			t.Fatalf("changed at %d, copy %v, want %v", rev, h.snapshot(), want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Mirror returned %v after cancel", err)
	}
}

// TestMirrorCoalesces: with a coalescing window, a burst of changes makes
// one Changed call, when the window's timer fires (driven by the test).
func TestMirrorCoalesces(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t)
	h := newCopyHandler()
	clock := newManualClock()
	cfg := h.config("/co/")
	cfg.Clock = clock
	cfg.Coalesce = time.Hour
	applied := make(chan struct{}, 100)
	apply := cfg.Apply
	cfg.Apply = func(b etcdkv.WatchBatch) { apply(b); applied <- struct{}{} }
	go etcdkv.Mirror(ctx, c, cfg)
	h.waitChanged(t) // the first read
	for i := range 5 {
		c.Put(ctx, "/co/"+string(rune('a'+i)), "x", etcdkv.NoLease)
	}
	if d := <-clock.asked; d != time.Hour {
		t.Fatalf("coalescing timer of %v", d)
	}
	// Wait until all five are applied (Apply returned for each batch,
	// on Mirror's goroutine); Changed must not have been called.
	for len(h.snapshot()) < 5 {
		select {
		case <-applied:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 5 keys applied in 10 s", len(h.snapshot()))
		}
	}
	select {
	case d := <-clock.asked:
		t.Fatalf("a second coalescing timer (%v) within one burst", d)
	default:
	}
	select {
	case rev := <-h.changed:
		t.Fatalf("Changed(%d) before the coalescing window ended", rev)
	default:
	}
	clock.fire()
	h.waitChanged(t)
	if n := len(h.snapshot()); n != 5 {
		t.Fatalf("%d keys after the burst", n)
	}
	select {
	case rev := <-h.changed:
		t.Fatalf("a second Changed(%d) for one burst", rev)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestMirrorRereadsAfterCompaction: while the first Reset runs, keys change
// and the store is compacted past the read's revision: the watch from that
// revision fails, and Mirror reads everything again, so the copy ends up
// right.
func TestMirrorRereadsAfterCompaction(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t)
	c.Put(ctx, "/cp/old", "1", etcdkv.NoLease)
	h := newCopyHandler()
	h.onReset = func(n int) {
		if n != 1 {
			return
		}
		c.Delete(ctx, "/cp/old", false)
		rev, _ := c.Put(ctx, "/cp/new", "2", etcdkv.NoLease)
		if _, err := c.Raw().Compact(ctx, rev); err != nil {
			t.Error(err)
		}
	}
	var mu sync.Mutex
	var failures []error
	cfg := h.config("/cp/")
	cfg.Failed = func(err error, n int, retry time.Duration) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	cfg.Retry = time.Millisecond
	go etcdkv.Mirror(ctx, c, cfg)
	// Changed follows every Reset and every applied batch.
	for !maps.Equal(h.snapshot(), map[string]string{"/cp/new": "2"}) {
		h.waitChanged(t)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) == 0 || !etcdkv.IsCompacted(failures[0]) {
		t.Fatalf("failures reported: %v", failures)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.resets < 2 {
		t.Fatalf("%d resets", h.resets)
	}
}

func TestMirrorRetriesWhileEtcdIsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Every read fails, after 50 ms (a closed client's reads take
	// clientv3's retries, 2.5 s, before they fail; the delays under test
	// are the manual clock's, not these).
	c := etcdkv.New(etcdtest.New(t), etcdkv.WithTimeout(50*time.Millisecond))
	c.Close()
	clock := newManualClock()
	var mu sync.Mutex
	var retries []time.Duration
	cfg := newCopyHandler().config("/down/")
	cfg.Clock = clock
	cfg.Retry, cfg.MaxRetry = 100*time.Millisecond, 400*time.Millisecond
	cfg.Failed = func(err error, n int, retry time.Duration) {
		mu.Lock()
		retries = append(retries, retry)
		mu.Unlock()
	}
	go etcdkv.Mirror(ctx, c, cfg)
	for range 4 {
		<-clock.asked
		clock.fire()
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	if !slices.Equal(retries[:4], want) {
		t.Fatalf("retry delays %v, want %v", retries, want)
	}
}

package store

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// TestViewRereadsAfterFailedWatch: the view's watches start at a revision
// that is compacted away before they are set up, so they fail; the view is
// read again, and what the leader Applied while that read ran is kept.
func TestViewRereadsAfterFailedWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s := New(etcdkv.New(etcdtest.New(t)), "/test/fleet/")
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	if _, err := s.CreateUnit(ctx, fleet.Unit{Name: "a.service", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}

	v := s.NewView()
	defer v.Close()
	var mu sync.Mutex
	resets := 0
	reread := make(chan struct{})
	applied := Changes{Put: []ScheduleEntry{{Unit: "a.service", Machine: "m1", Hash: "h1", DesiredState: fleet.JobStateLaunched}}}
	decode := v.m.h.reset
	v.m.h.reset = func(kvs []etcdkv.KV, rev int64) func() error {
		mu.Lock()
		resets++
		n := resets
		mu.Unlock()
		switch n {
		case 1:
			// Changes after the read, then compaction past them: the
			// watches from rev+1 fail.
			if _, err := s.CreateUnit(ctx, fleet.Unit{Name: "b.service", Hash: "h2"}); err != nil {
				t.Error(err)
			}
			last, err := s.kv.Put(ctx, s.layout.Machine("m9"), `{"publicIP":"10.0.0.9"}`, etcdkv.NoLease)
			if err != nil {
				t.Error(err)
			}
			if _, err := s.cli.Compact(ctx, last); err != nil {
				t.Error(err)
			}
		case 2:
			// The leader writes while the second read is being decoded:
			// the read predates the write, Applied records it.
			if err := s.Apply(ctx, l, applied); err != nil {
				t.Error(err)
			}
			v.Applied(applied)
			close(reread)
		}
		return decode(kvs, rev)
	}
	if _, err := v.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reread:
	case <-ctx.Done():
		t.Fatal("the view was not read again after its watches failed")
	}
	got, err := v.Snapshot(ctx) // waits for the second read
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.Rev, want.Rev = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("view after the re-read\n%+v\nwant\n%+v", got, want)
	}
	if len(got.Units) != 2 || len(got.Machines) != 1 || len(got.Schedule) != 1 {
		t.Fatalf("view after the re-read: %+v", got)
	}
	select {
	case <-v.Wake():
	default:
		t.Fatal("no wake-up after the failed watch")
	}
}

// TestViewLifecycle: the Mirror starts with the first Snapshot, Invalidate
// replaces it, Close stops it, and a Snapshot whose ctx has ended fails
// without starting one.
func TestViewLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s := New(etcdkv.New(etcdtest.New(t)), "/test/fleet/")
	v := s.NewView()
	running := func() (bool, chan struct{}) {
		v.m.mu.Lock()
		defer v.m.mu.Unlock()
		return v.m.cancel != nil, v.m.done
	}
	if on, _ := running(); on {
		t.Fatal("a Mirror runs before the first Snapshot")
	}
	if _, err := v.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	on, first := running()
	if !on {
		t.Fatal("no Mirror after Snapshot")
	}
	// Applied without a running Mirror is dropped: the next read sees it.
	v.Invalidate()
	<-first
	v.Applied(Changes{Put: []ScheduleEntry{{Unit: "x", Machine: "m"}}})
	if len(v.pending) != 0 {
		t.Fatalf("pending %v with no Mirror running", v.pending)
	}
	snap, err := v.Snapshot(ctx)
	if err != nil || len(snap.Schedule) != 0 {
		t.Fatalf("Snapshot after Invalidate: %+v, %v", snap, err)
	}
	_, second := running()
	v.Close()
	select {
	case <-second:
	default:
		t.Fatal("Close returned before the Mirror stopped")
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := v.Snapshot(done); err == nil {
		t.Fatal("Snapshot with an ended ctx succeeded")
	}
	if on, _ := running(); on {
		t.Fatal("a Snapshot with an ended ctx started a Mirror")
	}

	// When the ctx of the Snapshot that started the Mirror ends, the Mirror
	// stops and the next Snapshot starts another.
	short, stopShort := context.WithCancel(ctx)
	if _, err := v.Snapshot(short); err != nil {
		t.Fatal(err)
	}
	_, third := running()
	stopShort()
	<-third
	if on, _ := running(); on {
		t.Fatal("the Mirror's ctx ended, but it is still recorded as running")
	}
	if _, err := v.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	v.Close()
}

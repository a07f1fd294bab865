package store_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/store"
)

// A timer's record: RecordTrigger is a compare-and-swap on LastTrigger
// (of machines racing to fire one slot, exactly one wins), UpdateTimer
// keeps LastTrigger and writes only changes.
func TestTimerRecords(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	t0 := time.Date(2026, 12, 3, 18, 30, 0, 0, time.UTC)

	if _, ok, err := s.Timer(ctx, "t.timer"); err != nil || ok {
		t.Fatalf("Timer of a timer without record: ok %v err %v", ok, err)
	}
	rec, err := s.UpdateTimer(ctx, store.TimerRecord{Timer: "t.timer", Activates: "t.service", Machine: "m1", Next: t0, LastTrigger: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.LastTrigger.IsZero() || !rec.Next.Equal(t0) {
		t.Fatalf("UpdateTimer took LastTrigger from its argument: %+v", rec)
	}

	// Ten machines fire slot t0 at once: one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.RecordTrigger(ctx, store.TimerRecord{Timer: "t.timer", Activates: "t.service", Machine: "m1", LastTrigger: t0, Next: t0.Add(2 * time.Second)}, time.Time{})
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d machines fired one slot", n)
	}
	got, ok, err := s.Timer(ctx, "t.timer")
	if err != nil || !ok || !got.LastTrigger.Equal(t0) || !got.Next.Equal(t0.Add(2*time.Second)) || got.Activates != "t.service" {
		t.Fatalf("Timer = %+v %v %v", got, ok, err)
	}
	// A stale prev, or a slot not after the stored one, is refused.
	if ok, err := s.RecordTrigger(ctx, store.TimerRecord{Timer: "t.timer", LastTrigger: t0.Add(4 * time.Second)}, time.Time{}); err != nil || ok {
		t.Errorf("RecordTrigger with a stale prev: %v %v", ok, err)
	}
	if ok, err := s.RecordTrigger(ctx, store.TimerRecord{Timer: "t.timer", LastTrigger: t0}, t0); err != nil || ok {
		t.Errorf("RecordTrigger of the same slot again: %v %v", ok, err)
	}

	// UpdateTimer keeps the last trigger; an unchanged record is not written.
	if _, err := s.UpdateTimer(ctx, store.TimerRecord{Timer: "t.timer", Activates: "t.service", Machine: "m2", Next: t0.Add(4 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.Timer(ctx, "t.timer")
	if got.Machine != "m2" || !got.LastTrigger.Equal(t0) || !got.Next.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("after UpdateTimer: %+v", got)
	}
	rev := func() int64 {
		resp, err := s.KV().Raw().Get(ctx, s.Prefix()+"timers/t.timer")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get: %v", err)
		}
		return resp.Kvs[0].ModRevision
	}
	before := rev()
	if _, err := s.UpdateTimer(ctx, got); err != nil {
		t.Fatal(err)
	}
	if after := rev(); after != before {
		t.Errorf("an unchanged UpdateTimer wrote (mod revision %d -> %d)", before, after)
	}

	if _, err := s.UpdateTimer(ctx, store.TimerRecord{Timer: "a.timer", Activates: "x.service", Machine: "m1"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Timers(ctx)
	if err != nil || len(all) != 2 || all[0].Timer != "a.timer" || all[1].Timer != "t.timer" {
		t.Fatalf("Timers = %+v %v", all, err)
	}
	if err := s.DeleteTimer(ctx, "a.timer"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Timers(ctx); len(all) != 1 {
		t.Fatalf("after DeleteTimer: %+v", all)
	}
}

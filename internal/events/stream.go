package events

import (
	"context"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/store/keys"
)

// HoldBack is how long Stream holds an unscheduled event back, waiting for
// the scheduled event that would make it a rescheduled one.
const HoldBack = 300 * time.Millisecond

// Stream watches prefix from fromRev (0 = from now) and sends the derived
// events until ctx ends; then the channel is closed (see the package
// contract).
func Stream(ctx context.Context, c *etcdkv.Client, prefix string, fromRev int64) <-chan fleet.Event {
	out := make(chan fleet.Event, 64)
	go func() {
		defer close(out)
		s := &streamer{ctx: ctx, out: out, layout: keys.New(prefix)}
		s.run(c, prefix, fromRev)
	}()
	return out
}

type streamer struct {
	ctx     context.Context
	out     chan<- fleet.Event
	pending []fleet.Event
	lastRev int64
	layout  keys.Layout
}

// send delivers evs; false when ctx ended.
func (s *streamer) send(evs []fleet.Event) bool {
	for _, e := range evs {
		select {
		case s.out <- e:
		case <-s.ctx.Done():
			return false
		}
	}
	return true
}

// release sends the pending events that can no longer merge: everything
// before the first unscheduled event of the last two revisions.
func (s *streamer) release() bool {
	cut := len(s.pending)
	for i, e := range s.pending {
		if e.Type == fleet.EventUnitUnscheduled && e.Rev >= s.lastRev-1 {
			cut = i
			break
		}
	}
	ok := s.send(s.pending[:cut])
	s.pending = append(s.pending[:0:0], s.pending[cut:]...)
	return ok
}

func (s *streamer) flush() bool {
	ok := s.send(s.pending)
	s.pending = nil
	return ok
}

func (s *streamer) run(c *etcdkv.Client, prefix string, next int64) {
	ctx := s.ctx
	backoff := 50 * time.Millisecond
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		wch := c.Watch(wctx, prefix, etcdkv.WatchOptions{Prefix: true, FromRev: next, PrevKV: true})
	watch:
		for {
			select {
			case <-ctx.Done():
				cancel()
				return
			case <-hold.C:
				if !s.flush() {
					cancel()
					return
				}
			case b, ok := <-wch:
				if !ok {
					break watch
				}
				if b.Compacted != 0 {
					// Missed changes: tell the consumer to re-read.
					next = b.Compacted
					if !s.flush() || !s.send([]fleet.Event{{
						Rev: b.Compacted, Time: time.Now(), Type: fleet.EventStreamResync,
						Message: "events were compacted away; re-read the cluster state",
					}}) {
						cancel()
						return
					}
					break watch
				}
				if b.Err != nil {
					break watch
				}
				backoff = 50 * time.Millisecond
				now := time.Now()
				for _, e := range b.Events {
					for _, d := range Derive(s.layout, e) {
						d.Time = now
						s.pending = append(s.pending, d)
					}
					next = e.KV.ModRev + 1
					s.lastRev = e.KV.ModRev
				}
				s.pending = Coalesce(s.pending)
				if !s.release() {
					cancel()
					return
				}
				if len(s.pending) > 0 {
					hold.Reset(HoldBack)
				}
			}
		}
		cancel()
		if !s.flush() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-c.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

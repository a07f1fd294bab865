package events

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
)

// HoldBack is how long Stream holds an unscheduled event back, waiting for
// the scheduled event that would make it a rescheduled one.
const HoldBack = 300 * time.Millisecond

// Stream watches prefix from fromRev (0 = from now) and sends the derived
// events until ctx ends; then the channel is closed (see the package
// contract).
func Stream(ctx context.Context, cli *clientv3.Client, prefix string, fromRev int64) <-chan fleet.Event {
	out := make(chan fleet.Event, 64)
	go func() {
		defer close(out)
		s := &streamer{ctx: ctx, out: out}
		s.run(cli, prefix, fromRev)
	}()
	return out
}

type streamer struct {
	ctx     context.Context
	out     chan<- fleet.Event
	pending []fleet.Event
	lastRev int64
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

func (s *streamer) run(cli *clientv3.Client, prefix string, next int64) {
	ctx := s.ctx
	backoff := 50 * time.Millisecond
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV()}
		if next > 0 {
			opts = append(opts, clientv3.WithRev(next))
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := cli.Watch(wctx, prefix, opts...)
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
			case resp, ok := <-wch:
				if !ok {
					break watch
				}
				if resp.CompactRevision != 0 {
					// Missed changes: tell the consumer to re-read.
					next = resp.CompactRevision
					if !s.flush() || !s.send([]fleet.Event{{
						Rev: resp.CompactRevision, Time: time.Now(), Type: fleet.EventStreamResync,
						Message: "events were compacted away; re-read the cluster state",
					}}) {
						cancel()
						return
					}
					break watch
				}
				if resp.Err() != nil || resp.Canceled {
					break watch
				}
				backoff = 50 * time.Millisecond
				now := time.Now()
				for _, e := range resp.Events {
					for _, d := range Derive(prefix, e.Type, e.Kv, e.PrevKv) {
						d.Time = now
						s.pending = append(s.pending, d)
					}
					next = e.Kv.ModRevision + 1
					s.lastRev = e.Kv.ModRevision
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
		case <-cli.Ctx().Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

package store

import (
	"context"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// Notify returns a channel that receives a wake-up (coalesced: capacity 1)
// after changes under prefix+sub ("" = everything; "schedule/<machine>/" for
// one agent). The watch starts at the revision read when Notify is called
// (or, if that read fails within its request deadline, at the watch's
// creation, with a wake-up at once), so a read made after Notify returns
// cannot miss a change. After an error (compaction, lost etcd leader,
// reconnect) the watch is set up again, from the revision after the last
// change it saw (from now after a compaction), and a wake-up is sent, since
// changes may have been missed: the consumer re-reads. The channel is
// closed when ctx ends or the client is closed.
func (s *Store) Notify(ctx context.Context, sub string) <-chan struct{} {
	out := make(chan struct{}, 1)
	wake := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	key := s.prefix + sub
	var from int64 // 0: from the watch's creation
	if _, _, rev, err := s.kv.Get(ctx, key); err == nil {
		from = rev + 1
	} else {
		wake()
	}
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	go func() {
		defer close(out)
		backoff := minBackoff
		for {
			started := time.Now()
			healthy := false
			var err error
			wctx, cancel := context.WithCancel(ctx)
			for b := range s.kv.Watch(wctx, key, etcdkv.WatchOptions{Prefix: true, FromRev: from}) {
				if b.Err != nil {
					err = b.Err
					break
				}
				healthy = true
				if n := len(b.Events); n > 0 {
					from = b.Events[n-1].KV.ModRev + 1
					wake()
				}
			}
			cancel()
			if ctx.Err() != nil || s.closed() {
				return
			}
			if etcdkv.IsCompacted(err) {
				from = 0 // what was missed is gone: the wake-up below re-reads
			}
			if healthy || time.Since(started) >= maxBackoff {
				backoff = minBackoff
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.kv.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			// Changes may have been missed between the two watches.
			wake()
		}
	}()
	return out
}

// closed reports whether the store's client was closed.
func (s *Store) closed() bool {
	select {
	case <-s.kv.Done():
		return true
	default:
		return false
	}
}

package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Notify returns a channel that receives a wake-up (coalesced: capacity 1)
// after changes under prefix+sub ("" = everything; "schedule/<machine>/" for
// one agent). The watch is running when Notify returns (or its request
// deadline passed), so a read made after Notify cannot miss a change. After
// an error (compaction, lost etcd leader, reconnect) the watch is set up
// again and a wake-up is sent, since changes may have been missed: the
// consumer re-reads. The channel is closed when ctx ends or the client is
// closed.
func (s *Store) Notify(ctx context.Context, sub string) <-chan struct{} {
	out := make(chan struct{}, 1)
	wake := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	key := s.prefix + sub
	watch := func() (clientv3.WatchChan, context.CancelFunc) {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		return s.cli.Watch(wctx, key, clientv3.WithPrefix(), clientv3.WithCreatedNotify()), cancel
	}
	// waitCreated consumes the creation notice; false if the watch failed.
	waitCreated := func(wch clientv3.WatchChan) bool {
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		select {
		case resp, ok := <-wch:
			return ok && resp.Err() == nil && resp.Created
		case <-t.C:
			return false
		}
	}

	wch, cancel := watch()
	created := waitCreated(wch)
	go func() {
		defer close(out)
		defer func() { cancel() }()
		backoff := 50 * time.Millisecond
		if !created {
			wake()
		}
		for {
			healthy := created
			for resp := range wch {
				if resp.Err() != nil || resp.Canceled {
					break
				}
				if resp.Created {
					healthy = true
					continue
				}
				if len(resp.Events) > 0 {
					wake()
				}
				if !resp.IsProgressNotify() {
					healthy = true
				}
			}
			cancel()
			if ctx.Err() != nil || s.cli.Ctx().Err() != nil {
				return
			}
			if healthy {
				backoff = 50 * time.Millisecond
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.cli.Ctx().Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Second)
			wch, cancel = watch()
			created = waitCreated(wch)
			// Changes may have been missed between the two watches.
			wake()
		}
	}()
	return out
}

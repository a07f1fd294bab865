package etcdkv

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchOptions tune Watch.
type WatchOptions struct {
	// Prefix watches every key under the key given.
	Prefix bool
	// FromRev starts at that revision (0: changes after now). A compacted
	// FromRev ends the watch at once with ErrCompacted.
	FromRev int64
	// PrevKV fills Event.Prev.
	PrevKV bool
}

// WatchBatch is one response of a watch: events of one or more revisions,
// in order. A batch with Err is the last: the watch ended (compaction,
// cancelled by the server, no etcd leader, closed client). When ctx ends the
// channel is closed without such a batch.
type WatchBatch struct {
	// Key is the key (or prefix) the watch was started on.
	Key    string
	Events []Event
	// Rev is the store's revision when the batch was sent.
	Rev int64
	// Compacted is the compaction revision when the watch ended because
	// FromRev was compacted (Err wraps ErrCompacted).
	Compacted int64
	Err       error
}

// ErrWatchEnded is returned (wrapped) in the last batch of a watch that
// ended without an error of etcd's (the client was closed).
var ErrWatchEnded = errors.New("watch ended")

// Watch watches key (or the prefix key with o.Prefix) and sends what
// happens on the returned channel until ctx ends or the watch fails (see
// WatchBatch).
func (c *Client) Watch(ctx context.Context, key string, o WatchOptions) <-chan WatchBatch {
	out := make(chan WatchBatch, 1)
	go func() {
		defer close(out)
		c.watchInto(ctx, key, o, out)
	}()
	return out
}

// watchInto runs one watch, sending its batches to out, until ctx ends or
// the watch fails (then its last batch carries the error). It reports
// whether it ended by failure.
func (c *Client) watchInto(ctx context.Context, key string, o WatchOptions, out chan<- WatchBatch) bool {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	var opts []clientv3.OpOption
	if o.Prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.FromRev > 0 {
		opts = append(opts, clientv3.WithRev(o.FromRev))
	}
	if o.PrevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	send := func(b WatchBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for resp := range c.raw.Watch(wctx, key, opts...) {
		if resp.CompactRevision != 0 {
			send(WatchBatch{Key: key, Compacted: resp.CompactRevision,
				Err: fmt.Errorf("etcd watch %s from %d: %w (compacted at %d)", key, o.FromRev, ErrCompacted, resp.CompactRevision)})
			return true
		}
		if err := resp.Err(); err != nil {
			send(WatchBatch{Key: key, Err: fmt.Errorf("etcd watch %s: %w", key, err)})
			return true
		}
		if resp.Canceled {
			send(WatchBatch{Key: key, Err: fmt.Errorf("etcd watch %s: canceled by the server", key)})
			return true
		}
		if len(resp.Events) == 0 {
			continue
		}
		b := WatchBatch{Key: key, Rev: resp.Header.Revision, Events: make([]Event, len(resp.Events))}
		for i, ev := range resp.Events {
			e := Event{KV: fromPB(ev.Kv)}
			if ev.Type == clientv3.EventTypeDelete {
				e.Type = EventDelete
			}
			if ev.PrevKv != nil {
				p := fromPB(ev.PrevKv)
				e.Prev = &p
			}
			b.Events[i] = e
		}
		if !send(b) {
			return false
		}
	}
	if ctx.Err() != nil {
		return false
	}
	send(WatchBatch{Key: key, Err: fmt.Errorf("etcd watch %s: %w", key, ErrWatchEnded)})
	return true
}

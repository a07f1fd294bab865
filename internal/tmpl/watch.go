package tmpl

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// Watch renders every resource, then re-renders a resource whenever a key
// it reads changes, until ctx is done. Each resource has its own watches,
// started at the revision it rendered + 1, so no change is missed between
// the render and the watch. Bursts are coalesced per Options.WaitMin and
// WaitMax. A compacted or failed watch leads to a full re-render and new
// watches. Errors are logged and reported in Status.
func (d *Daemon) Watch(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range d.res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watchResource(ctx, r)
		}()
	}
	wg.Wait()
	return nil
}

func (d *Daemon) watchResource(ctx context.Context, r *resource) {
	lg := d.log.With("resource", r.cfg.Name())
	backoff := 100 * time.Millisecond
	// wait sleeps for backoff and doubles it (up to 10 s); false when ctx
	// ended first.
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
		return true
	}
	for ctx.Err() == nil {
		rev, _ := d.process(ctx, r)
		if rev == 0 {
			// etcd unreachable: retry the full render.
			if !wait() {
				return
			}
			continue
		}
		if d.afterRender != nil {
			d.afterRender(rev)
		}
		start := time.Now()
		err := d.follow(ctx, r, rev)
		if ctx.Err() != nil {
			return
		}
		lg.Warn("watch ended; re-rendering and watching again", "err", err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		if !wait() {
			return
		}
	}
}

// watchMsg carries the newest relevant revision of one watch response, or
// the error that ended a watch.
type watchMsg struct {
	rev int64
	err error
}

// follow watches r's keys from rev+1 and re-renders after each coalesced
// burst. It returns when a watch fails (compaction, cancellation by the
// server, a fetch error) so the caller can start over with a full render.
func (d *Daemon) follow(ctx context.Context, r *resource, rev int64) error {
	// The seam's watches require an etcd leader: a member cut off from the
	// quorum ends them, and the resource renders again elsewhere.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan watchMsg)
	for _, key := range r.keys {
		wch := d.kv.Watch(wctx, key, etcdkv.WatchOptions{Prefix: true, FromRev: rev + 1})
		go forward(wctx, wch, key, msgs)
	}
	return d.coalesce(ctx, msgs, rev, func() (int64, error) { return d.process(ctx, r) })
}

// coalesce re-renders (render returns the revision rendered, 0 if it could
// not read etcd) after each burst of msgs newer than rev, per WaitMin and
// WaitMax, and every Interval if set. It returns when ctx ends, a message
// carries an error, or a render cannot read etcd.
func (d *Daemon) coalesce(ctx context.Context, msgs <-chan watchMsg, rev int64, render func() (int64, error)) error {
	var resync <-chan time.Time
	if d.opts.Interval > 0 {
		t := time.NewTicker(d.opts.Interval)
		defer t.Stop()
		resync = t.C
	}
	fire := time.NewTimer(time.Hour)
	fire.Stop()
	defer fire.Stop()
	pending := false
	var deadline time.Time
	rendered := rev // newest revision reflected in Dest

	rerender := func() error {
		newRev, err := render()
		if newRev == 0 {
			return fmt.Errorf("re-render: %w", err)
		}
		rendered = max(rendered, newRev)
		return nil // template/check/reload errors are reported; keep watching
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-msgs:
			if m.err != nil {
				return m.err
			}
			if m.rev <= rendered {
				continue // already reflected by a later render
			}
			now := time.Now()
			if !pending {
				pending = true
				deadline = now.Add(d.opts.WaitMax)
			}
			wait := min(d.opts.WaitMin, deadline.Sub(now))
			fire.Reset(max(wait, 0))
		case <-fire.C:
			pending = false
			if err := rerender(); err != nil {
				return err
			}
		case <-resync:
			if err := rerender(); err != nil {
				return err
			}
		}
	}
}

// forward turns a watch's batches into watchMsgs on out: the newest
// revision of each batch whose events touch key (the prefix watch also sees
// siblings such as key+"x"), and finally the error that ended the watch
// (a compaction past rev+1 among them). The seam closes the channel without
// an error batch only when ctx ends.
func forward(ctx context.Context, wch <-chan etcdkv.WatchBatch, key string, out chan<- watchMsg) {
	send := func(m watchMsg) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for b := range wch {
		if b.Err != nil {
			send(watchMsg{err: b.Err})
			return
		}
		var rev int64
		for _, ev := range b.Events {
			if underKey(ev.KV.Key, key) {
				rev = max(rev, ev.KV.ModRev)
			}
		}
		if rev > 0 && !send(watchMsg{rev: rev}) {
			return
		}
	}
	if ctx.Err() == nil {
		send(watchMsg{err: fmt.Errorf("watch %s: channel closed", key)})
	}
}

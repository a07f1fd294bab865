package etcdkv

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Clock gives Mirror its time, so that tests can drive it.
type Clock interface {
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// MirrorConfig configures Mirror.
type MirrorConfig struct {
	// Prefixes are read at one revision and then watched from the next.
	Prefixes []string
	// ListOnly are read with Prefixes, at the same revision, but not
	// watched: for parts of the copy that the handler keeps current
	// itself (its own writes). Their keys follow those of Prefixes in
	// Reset. May be nil.
	ListOnly []string
	// Reset receives the whole content of the prefixes (in the order of
	// Prefixes, then of ListOnly, each sorted by key) after every
	// (re)read: the handler replaces its copy.
	Reset func(kvs []KV, rev int64)
	// Apply receives each watch batch, in revision order per prefix
	// (batches of different prefixes may interleave).
	Apply func(b WatchBatch)
	// Changed is called after each Reset and once a burst of Apply calls
	// has settled (see Coalesce). May be nil.
	Changed func(rev int64)
	// Coalesce gathers Apply calls for that long after the first of a
	// burst before Changed is called; 0 calls Changed after every batch.
	Coalesce time.Duration
	// PrevKV asks the watches for the previous values (Event.Prev).
	PrevKV bool
	// Retry is the first delay after a failed read or watch (default
	// 100 ms); it doubles after each consecutive failed read, up to
	// MaxRetry (default 5 s).
	Retry, MaxRetry time.Duration
	// Failed is told about each failure before Mirror waits to retry:
	// read failures with their count of consecutive failures, watch
	// failures with 0. May be nil.
	Failed func(err error, failures int, retryIn time.Duration)
	// Clock drives the coalescing and retry timers (RealClock if nil).
	Clock Clock
}

// Mirror keeps a copy of the prefixes current through cfg's callbacks,
// until ctx ends (it then returns ctx's error). All callbacks run on
// Mirror's goroutine, one at a time. While etcd cannot be reached the last
// copy stays as it is; nothing is reset to empty.
func Mirror(ctx context.Context, c *Client, cfg MirrorConfig) error {
	if len(cfg.Prefixes) == 0 {
		return errors.New("etcdkv.Mirror: no prefixes")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 100 * time.Millisecond
	}
	if cfg.MaxRetry < cfg.Retry {
		cfg.MaxRetry = max(5*time.Second, cfg.Retry)
	}
	changed := cfg.Changed
	if changed == nil {
		changed = func(int64) {}
	}
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-cfg.Clock.After(d):
			return true
		}
	}
	list := cfg.Prefixes
	if len(cfg.ListOnly) > 0 {
		list = append(slices.Clip(cfg.Prefixes), cfg.ListOnly...)
	}
	failures := 0
	delay := cfg.Retry
	for {
		kvs, rev, err := c.ListPrefixes(ctx, list)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			if cfg.Failed != nil {
				cfg.Failed(err, failures, delay)
			}
			if !wait(delay) {
				return ctx.Err()
			}
			delay = min(2*delay, cfg.MaxRetry)
			continue
		}
		failures, delay = 0, cfg.Retry
		cfg.Reset(kvs, rev)
		changed(rev)

		err = mirrorWatch(ctx, c, cfg, rev, changed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cfg.Failed != nil {
			cfg.Failed(err, 0, cfg.Retry)
		}
		if !wait(cfg.Retry) {
			return ctx.Err()
		}
	}
}

// mirrorWatch follows the prefixes from rev+1 until a watch fails or ctx
// ends.
func mirrorWatch(ctx context.Context, c *Client, cfg MirrorConfig, rev int64, changed func(int64)) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan WatchBatch, len(cfg.Prefixes))
	for _, p := range cfg.Prefixes {
		go c.watchInto(wctx, p, WatchOptions{Prefix: true, FromRev: rev + 1, PrevKV: cfg.PrevKV}, batches)
	}
	var fire <-chan time.Time
	last := rev
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-fire:
			fire = nil
			changed(last)
		case b := <-batches:
			if b.Err != nil {
				if fire != nil {
					changed(last) // what was applied is not lost
				}
				return b.Err
			}
			cfg.Apply(b)
			last = max(last, b.Rev)
			if cfg.Coalesce <= 0 {
				changed(last)
				continue
			}
			if fire == nil {
				fire = cfg.Clock.After(cfg.Coalesce)
			}
		}
	}
}

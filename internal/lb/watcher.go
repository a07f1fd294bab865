package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Client is the etcd v3 client to read from.
	Client *clientv3.Client
	// Prefix is the service's key prefix, e.g. "/services/web/"; a missing
	// trailing slash is added so that "/services/web2/" is not matched.
	Prefix string
	// Update receives the full, ID-sorted backend set after the initial
	// read and after every change (typically Pool.Update). It is called
	// from the watcher's goroutine only.
	Update func([]Backend)
	// Coalesce is how long a burst of changes is gathered before Update
	// runs; zero means 5ms, negative means none.
	Coalesce time.Duration
	// RequestTimeout bounds each Get; zero means 3s.
	RequestTimeout time.Duration
	// Logger receives warnings (unreachable etcd, bad endpoint values).
	Logger *slog.Logger
}

// Watcher mirrors the endpoints registered under a service prefix into an
// Update callback: a Get of the prefix, then a Watch from the next revision,
// re-reading everything after a compaction, a canceled watch or an error.
// While etcd is unreachable the last known set stays in force.
type Watcher struct {
	cfg   WatcherConfig
	ready chan struct{}

	mu      sync.Mutex
	lastErr error
	synced  bool
}

// NewWatcher returns a watcher; call Run to start it.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Coalesce == 0 {
		cfg.Coalesce = 5 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Update == nil {
		cfg.Update = func([]Backend) {}
	}
	return &Watcher{cfg: cfg, ready: make(chan struct{})}
}

// Ready is closed once the first read of the prefix succeeded and Update
// has been called with its result.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// LastError returns the most recent etcd error, or nil after a successful
// read.
func (w *Watcher) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Run watches until ctx ends and then returns ctx's error.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.cfg.Logger
	backoff := 250 * time.Millisecond
	attempt := 0
	for {
		state, rev, err := w.load(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			attempt++
			w.setErr(err)
			log.Warn("lb: etcd unreachable, retrying", "endpoints", strings.Join(w.cfg.Client.Endpoints(), ","),
				"prefix", w.cfg.Prefix, "attempt", attempt, "retry_in", backoff, "err", err)
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if attempt > 0 {
			log.Info("lb: etcd reachable again", "prefix", w.cfg.Prefix, "revision", rev)
		}
		attempt, backoff = 0, 250*time.Millisecond
		w.setErr(nil)
		w.push(state)
		w.mu.Lock()
		if !w.synced {
			w.synced = true
			close(w.ready)
		}
		w.mu.Unlock()

		err = w.watch(ctx, state, rev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.setErr(err)
		log.Warn("lb: watch interrupted, re-reading", "prefix", w.cfg.Prefix, "err", err)
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (w *Watcher) setErr(err error) {
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
}

// load reads the whole prefix.
func (w *Watcher) load(ctx context.Context) (map[string]Backend, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	resp, err := w.cfg.Client.Get(rctx, w.cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", w.cfg.Prefix, err)
	}
	state := make(map[string]Backend, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		w.apply(state, string(kv.Key), kv.Value, false)
	}
	return state, resp.Header.Revision, nil
}

// apply records one key's change in state.
func (w *Watcher) apply(state map[string]Backend, key string, value []byte, deleted bool) {
	id := strings.TrimPrefix(key, w.cfg.Prefix)
	if id == "" || id == key {
		return
	}
	if deleted {
		delete(state, id)
		return
	}
	addr, err := ParseEndpoint(string(value))
	if err != nil {
		w.cfg.Logger.Warn("lb: ignoring endpoint that is not host:port", "key", key, "err", err)
		delete(state, id)
		return
	}
	state[id] = Backend{ID: id, Addr: addr}
}

func (w *Watcher) push(state map[string]Backend) {
	ids := slices.Sorted(maps.Keys(state))
	out := make([]Backend, len(ids))
	for i, id := range ids {
		out[i] = state[id]
	}
	w.cfg.Update(out)
}

const errWatchClosed = constError("watch channel closed")

// watch follows the prefix from rev+1 until an error, a compaction or ctx's
// end, pushing the state after each (coalesced) change.
func (w *Watcher) watch(ctx context.Context, state map[string]Backend, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.cfg.Client.Watch(wctx, w.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-fire:
			fire = nil
			w.push(state)
		case wresp, ok := <-wch:
			if !ok {
				return errWatchClosed
			}
			if wresp.CompactRevision != 0 {
				return fmt.Errorf("revision %d compacted (now %d)", rev+1, wresp.CompactRevision)
			}
			if err := wresp.Err(); err != nil {
				return err
			}
			if wresp.Canceled {
				return errors.New("watch canceled by the server")
			}
			if len(wresp.Events) == 0 {
				continue
			}
			for _, ev := range wresp.Events {
				w.apply(state, string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
			}
			rev = wresp.Header.Revision
			if w.cfg.Coalesce < 0 {
				w.push(state)
				continue
			}
			if fire == nil {
				if timer == nil {
					timer = time.NewTimer(w.cfg.Coalesce)
				} else {
					timer.Reset(w.cfg.Coalesce)
				}
				fire = timer.C
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package lb

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Client is the etcd client to read from.
	Client *etcdkv.Client
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
	state := map[string]Backend{}
	failing := false
	return etcdkv.Mirror(ctx, w.cfg.Client, etcdkv.MirrorConfig{
		Prefixes: []string{w.cfg.Prefix},
		Coalesce: max(w.cfg.Coalesce, 0),
		Retry:    250 * time.Millisecond,
		MaxRetry: 5 * time.Second,
		Reset: func(kvs []etcdkv.KV, rev int64) {
			if failing {
				log.Info("lb: etcd reachable again", "prefix", w.cfg.Prefix, "revision", rev)
				failing = false
			}
			w.setErr(nil)
			clear(state)
			for _, kv := range kvs {
				w.apply(state, kv.Key, kv.Value, false)
			}
		},
		Apply: func(b etcdkv.WatchBatch) {
			for _, ev := range b.Events {
				w.apply(state, ev.KV.Key, ev.KV.Value, ev.Type == etcdkv.EventDelete)
			}
		},
		Changed: func(int64) {
			w.push(state)
			w.mu.Lock()
			if !w.synced {
				w.synced = true
				close(w.ready)
			}
			w.mu.Unlock()
		},
		Failed: func(err error, failures int, retryIn time.Duration) {
			w.setErr(err)
			if failures == 0 {
				log.Warn("lb: watch interrupted, re-reading", "prefix", w.cfg.Prefix, "err", err)
				return
			}
			failing = true
			log.Warn("lb: etcd unreachable, retrying", "endpoints", strings.Join(w.cfg.Client.Endpoints(), ","),
				"prefix", w.cfg.Prefix, "attempt", failures, "retry_in", retryIn, "err", err)
		},
	})
}

func (w *Watcher) setErr(err error) {
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
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

package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// mirrored runs the etcdkv.Mirror behind a View or a ScheduleFollower: the
// Mirror is started by the first read of the copy (lock), is stopped by
// Invalidate and Close (stop) and when the context of the read that started
// it ends, and the callbacks of a Mirror that was stopped are ignored, so a
// stopped Mirror never touches the copy again.
//
// A failed watch makes the copy unreadable until the Mirror's next full
// read (Reset): readers wait for it rather than see a copy that may have
// missed changes.
type mirrored struct {
	kv   *etcdkv.Client
	wait time.Duration // how long a read waits for the copy to be (re)read
	what string        // for errors
	h    mirrorHandler

	mu      sync.Mutex         // guards the fields below and the owner's copy
	gen     uint64             // bumped by each stop: callbacks of older Mirrors are ignored
	cancel  context.CancelFunc // stops the running Mirror; nil: none runs
	done    chan struct{}      // closed when the running Mirror's goroutine has returned
	loaded  bool               // a Reset was applied since the start or the last failure (with cancel nil: one that failed to decode)
	ready   chan struct{}      // closed when loaded becomes true
	failed  bool               // a failure since the last Reset: that Reset wakes the owner
	lastErr error              // the last failure, for the error of a read that waited in vain

	wake chan struct{}
}

// mirrorHandler is what the owner of a mirrored copy supplies.
type mirrorHandler struct {
	prefixes []string // read and watched
	listOnly []string // read only (the owner keeps them current)
	// reset decodes a full read (outside mu) and returns what installs it
	// in the copy (called with mu held, unless the Mirror was stopped in
	// the meantime). install returns the decoding error the copy now
	// reports, if any: then the Mirror is stopped, so that the next read
	// of the copy reads everything again.
	reset func(kvs []etcdkv.KV, rev int64) (install func() error)
	// apply applies a watch batch to the loaded copy, with mu held. It may
	// call stopLocked to have the next read start afresh.
	apply func(b etcdkv.WatchBatch)
	// stopped is called with mu held when the Mirror is stopped. May be nil.
	stopped func()
}

func (m *mirrored) init(s *Store, what string, h mirrorHandler) {
	m.kv, m.what, m.h = s.kv, what, h
	// A full read is one request, then decoding: give it its request
	// timeout and as long again.
	m.wait = 2 * s.timeout
	m.ready = make(chan struct{})
	m.wake = make(chan struct{}, 1)
}

func (m *mirrored) notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// lock returns with mu held and the copy loaded: it starts the Mirror if
// none runs (its watches then live until ctx ends or stop) and waits for
// its full read, bounded by ctx and m.wait.
func (m *mirrored) lock(ctx context.Context) error {
	m.mu.Lock()
	if m.cancel == nil {
		if err := ctx.Err(); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("store: %s: %w", m.what, err)
		}
		m.unloadLocked() // a copy that failed to decode, left by its Mirror
		m.startLocked(ctx)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for !m.loaded {
		if m.cancel == nil { // stopped while we waited
			if err := ctx.Err(); err != nil {
				m.mu.Unlock()
				return fmt.Errorf("store: %s: %w", m.what, err)
			}
			m.startLocked(ctx)
		}
		ready := m.ready
		m.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(m.wait)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("store: %s: %w", m.what, ctx.Err())
		case <-timer.C:
			m.mu.Lock()
			err := m.lastErr
			m.mu.Unlock()
			if err == nil {
				err = context.DeadlineExceeded
			}
			return fmt.Errorf("store: %s: not read within %v: %w", m.what, m.wait, err)
		}
		m.mu.Lock()
	}
	return nil
}

// startLocked starts a Mirror bound to ctx.
func (m *mirrored) startLocked(ctx context.Context) {
	mctx, cancel := context.WithCancel(ctx)
	gen, done := m.gen, make(chan struct{})
	m.cancel, m.done, m.failed, m.lastErr = cancel, done, false, nil
	cfg := etcdkv.MirrorConfig{
		Prefixes: m.h.prefixes,
		ListOnly: m.h.listOnly,
		Reset: func(kvs []etcdkv.KV, rev int64) {
			install := m.h.reset(kvs, rev)
			m.mu.Lock()
			if m.gen != gen {
				m.mu.Unlock()
				return
			}
			bad := install()
			if !m.loaded {
				m.loaded = true
				close(m.ready)
			}
			wake := m.failed
			m.failed, m.lastErr = false, nil
			if bad != nil {
				// The readers get the error; the next read starts
				// afresh, as a failed read would.
				m.gen++
				m.cancel()
				m.cancel = nil // m.done stays, for Close
			}
			m.mu.Unlock()
			// A reader that started this read waits for it; after a
			// failure, nobody may be waiting.
			if wake {
				m.notify()
			}
		},
		Apply: func(b etcdkv.WatchBatch) {
			m.mu.Lock()
			if m.gen != gen || !m.loaded {
				m.mu.Unlock()
				return
			}
			m.h.apply(b)
			m.mu.Unlock()
			m.notify()
		},
		Failed: func(err error, failures int, retryIn time.Duration) {
			m.mu.Lock()
			if m.gen == gen {
				m.lastErr, m.failed = err, true
				m.unloadLocked()
			}
			m.mu.Unlock()
			if failures == 0 { // a watch failed: the owner reads again
				m.notify()
			}
		},
	}
	go func() {
		defer close(done)
		err := etcdkv.Mirror(mctx, m.kv, cfg)
		m.mu.Lock()
		if m.gen == gen { // ctx ended: the next read starts afresh
			m.stopLocked()
			m.lastErr = err
		}
		m.mu.Unlock()
	}()
}

// unloadLocked makes readers wait for the next Reset.
func (m *mirrored) unloadLocked() {
	if m.loaded {
		m.loaded = false
		m.ready = make(chan struct{})
	}
}

// stopLocked stops the running Mirror, if any: the next read starts a new
// one, which reads everything again.
func (m *mirrored) stopLocked() {
	m.gen++
	if m.cancel != nil {
		m.cancel()
		m.cancel, m.done = nil, nil
	}
	m.unloadLocked()
	if m.h.stopped != nil {
		m.h.stopped()
	}
}

// stop stops the running Mirror; with wait, it returns once the Mirror's
// goroutine has.
func (m *mirrored) stop(wait bool) {
	m.mu.Lock()
	done := m.done
	m.stopLocked()
	m.mu.Unlock()
	if wait && done != nil {
		<-done
	}
}

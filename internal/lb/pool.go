package lb

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDrainTimeout bounds how long a removed backend's in-flight requests
// and connections may run before they are cut.
const DefaultDrainTimeout = 30 * time.Second

// errDrainTimeout is the cancellation cause of work cut by the drain timeout.
const errDrainTimeout = constError("backend removed and drain timeout expired")

// constError is an error usable as a constant.
type constError string

func (e constError) Error() string { return string(e) }

// Target is a backend as held by a Pool, with its live counters. Targets are
// handed out by Pool.Acquire and given back with Pool.Release.
type Target struct {
	b        Backend
	inflight atomic.Int64
	total    atomic.Uint64
	draining atomic.Bool
	drained  atomic.Bool

	// abort is canceled (cause errDrainTimeout) when the target was removed
	// and its drain timeout expired: work still using it must stop.
	abort       context.Context
	cancelAbort context.CancelCauseFunc
	timer       *time.Timer // drain timeout; set under Pool.mu
	removedAt   time.Time   // set under Pool.mu
}

// NewTarget returns a free-standing target for b, for tests and custom
// Pickers; Pools create their own.
func NewTarget(b Backend) *Target {
	t := &Target{b: b}
	t.abort, t.cancelAbort = context.WithCancelCause(context.Background())
	return t
}

// Backend returns the target's backend.
func (t *Target) Backend() Backend { return t.b }

// InFlight returns the number of requests (HTTP) or connections (TCP) using
// the target now.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Draining reports whether the target was removed from its pool's rotation.
func (t *Target) Draining() bool { return t.draining.Load() }

// Aborted is closed when the target was removed and its drain timeout
// expired; work still using it should be cut.
func (t *Target) Aborted() <-chan struct{} { return t.abort.Done() }

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Service names the service in log lines.
	Service string
	// Balance is "roundrobin" (the default) or "leastconn".
	Balance string
	// Picker overrides Balance when set.
	Picker Picker
	// DrainTimeout bounds the drain of removed backends; zero means
	// DefaultDrainTimeout, negative means no bound.
	DrainTimeout time.Duration
	// Logger receives backend changes; nil discards them.
	Logger *slog.Logger
}

// Pool holds a service's current backends. Update replaces the set in
// memory; Acquire picks a backend for one request or connection and Release
// gives it back. Removed backends drain: they get no new work, their
// in-flight work finishes (or is cut after the drain timeout), and then the
// drained hooks run (the HTTP proxy closes their idle connections there).
// All methods are safe for concurrent use.
type Pool struct {
	picker  Picker
	service string
	drain   time.Duration
	log     *slog.Logger

	snap atomic.Pointer[[]*Target] // current rotation, sorted by ID

	mu       sync.Mutex
	byID     map[string]*Target
	draining map[*Target]struct{}
	hooks    []func(Backend)
}

// NewPool returns an empty pool.
func NewPool(cfg PoolConfig) (*Pool, error) {
	pk := cfg.Picker
	if pk == nil {
		var err error
		if pk, err = NewPicker(cfg.Balance); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drain := cfg.DrainTimeout
	if drain == 0 {
		drain = DefaultDrainTimeout
	}
	p := &Pool{
		picker:   pk,
		service:  cfg.Service,
		drain:    drain,
		log:      log,
		byID:     map[string]*Target{},
		draining: map[*Target]struct{}{},
	}
	empty := []*Target{}
	p.snap.Store(&empty)
	return p, nil
}

// onDrained registers f to run (without locks held) after a removed backend
// has drained.
func (p *Pool) onDrained(f func(Backend)) {
	p.mu.Lock()
	p.hooks = append(p.hooks, f)
	p.mu.Unlock()
}

// Update makes backends the pool's rotation. Backends already present with
// the same ID and Addr keep their counters; new ones join at once; missing
// ones (or ones whose Addr changed) start draining. Entries with an empty ID
// or Addr are ignored, and a repeated ID keeps its first entry.
func (p *Pool) Update(backends []Backend) {
	p.mu.Lock()
	next := make([]*Target, 0, len(backends))
	byID := make(map[string]*Target, len(backends))
	for _, b := range backends {
		if b.ID == "" || b.Addr == "" {
			continue
		}
		if _, dup := byID[b.ID]; dup {
			continue
		}
		t := p.byID[b.ID]
		if t == nil || t.b.Addr != b.Addr {
			t = NewTarget(b)
			p.log.Info("lb: backend added", "service", p.service, "id", b.ID, "addr", b.Addr)
		}
		byID[b.ID] = t
		next = append(next, t)
	}
	slices.SortFunc(next, func(a, b *Target) int { return strings.Compare(a.b.ID, b.b.ID) })
	// Publish the new rotation before marking removed targets draining:
	// Acquire re-picks when it lands on a draining target.
	p.snap.Store(&next)
	var done []*Target
	for id, t := range p.byID {
		if byID[id] == t {
			continue
		}
		t.draining.Store(true)
		t.removedAt = time.Now()
		p.draining[t] = struct{}{}
		n := t.inflight.Load()
		p.log.Info("lb: backend removed, draining", "service", p.service, "id", t.b.ID, "addr", t.b.Addr, "in_flight", n)
		if n == 0 {
			done = append(done, t)
			continue
		}
		if p.drain > 0 {
			t.timer = time.AfterFunc(p.drain, func() { p.drainExpired(t) })
		}
	}
	p.byID = byID
	p.mu.Unlock()
	for _, t := range done {
		p.finishDrain(t)
	}
}

func (p *Pool) drainExpired(t *Target) {
	if t.drained.Load() {
		return
	}
	p.log.Warn("lb: drain timeout expired, cutting in-flight work", "service", p.service,
		"id", t.b.ID, "addr", t.b.Addr, "in_flight", t.inflight.Load(), "drain_timeout", p.drain)
	t.cancelAbort(errDrainTimeout)
}

// finishDrain runs once per removed target, when its in-flight count is zero.
// Callers have seen the target draining; the count is read again here, after
// that, because a Release that brought it to zero may race with an Acquire
// that started before the target was marked draining and still holds it
// (that holder's own Release finishes the drain). Once draining is set and
// the count is zero, no Acquire can hand the target out again.
func (p *Pool) finishDrain(t *Target) {
	if t.inflight.Load() != 0 || !t.drained.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	delete(p.draining, t)
	if t.timer != nil {
		t.timer.Stop()
	}
	since := t.removedAt
	hooks := slices.Clone(p.hooks)
	p.mu.Unlock()
	p.log.Info("lb: backend drained", "service", p.service, "id", t.b.ID, "addr", t.b.Addr,
		"after", time.Since(since).Round(time.Millisecond))
	for _, h := range hooks {
		h(t.b)
	}
}

// Acquire picks a backend for one request or connection, skipping the IDs
// in exclude (backends already tried), and counts it in flight. It returns
// nil when no backend is available. Every non-nil result must be given back
// with Release exactly once.
func (p *Pool) Acquire(exclude []string) *Target {
	for {
		ts := *p.snap.Load()
		t := p.picker.Pick(ts, exclude)
		if t == nil {
			return nil
		}
		t.inflight.Add(1)
		if t.draining.Load() {
			// Removed between the snapshot and now: the newer
			// snapshot no longer holds it.
			p.Release(t)
			continue
		}
		t.total.Add(1)
		return t
	}
}

// Release gives back a target obtained from Acquire.
func (p *Pool) Release(t *Target) {
	if t.inflight.Add(-1) == 0 && t.draining.Load() {
		p.finishDrain(t)
	}
}

// Len returns the number of backends in rotation.
func (p *Pool) Len() int { return len(*p.snap.Load()) }

// Backends returns the backends in rotation, sorted by ID.
func (p *Pool) Backends() []Backend {
	ts := *p.snap.Load()
	out := make([]Backend, len(ts))
	for i, t := range ts {
		out[i] = t.b
	}
	return out
}

// hasAddr reports whether a backend in rotation serves on addr.
func (p *Pool) hasAddr(addr string) bool {
	for _, t := range *p.snap.Load() {
		if t.b.Addr == addr {
			return true
		}
	}
	return false
}

// BackendStatus is one backend in Pool.Status.
type BackendStatus struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	InFlight int64  `json:"in_flight"`
	Total    uint64 `json:"total"`
	Draining bool   `json:"draining"`
}

// Status returns the backends in rotation (sorted by ID) followed by the
// ones still draining.
func (p *Pool) Status() []BackendStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := *p.snap.Load()
	out := make([]BackendStatus, 0, len(ts)+len(p.draining))
	for _, t := range ts {
		out = append(out, statusOf(t))
	}
	var dr []BackendStatus
	for t := range p.draining {
		dr = append(dr, statusOf(t))
	}
	slices.SortFunc(dr, func(a, b BackendStatus) int { return strings.Compare(a.ID, b.ID) })
	return append(out, dr...)
}

func statusOf(t *Target) BackendStatus {
	return BackendStatus{ID: t.b.ID, Addr: t.b.Addr, InFlight: t.inflight.Load(), Total: t.total.Load(), Draining: t.draining.Load()}
}

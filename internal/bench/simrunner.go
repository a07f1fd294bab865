package bench

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/fleetd/fleet/internal/runner"
)

// simRunner is the bench's simulated machine: it implements runner.Runner
// and reports a unit active the moment it is started, so the scale scenario
// measures fleet's control plane (store, engine, agents, etcd) and nothing
// else.
type simRunner struct {
	mu      sync.Mutex
	units   map[string]runner.State
	changed chan struct{}
}

func newSimRunner() *simRunner {
	return &simRunner{units: make(map[string]runner.State), changed: make(chan struct{}, 1)}
}

func (r *simRunner) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *simRunner) Load(_ context.Context, u runner.Unit) error {
	r.mu.Lock()
	r.units[u.Name] = runner.State{LoadState: "loaded", ActiveState: "inactive", SubState: "dead", Since: time.Now(), Hash: u.Hash}
	r.mu.Unlock()
	r.notify()
	return nil
}

func (r *simRunner) set(name, active, sub string) error {
	r.mu.Lock()
	st, ok := r.units[name]
	if !ok {
		r.mu.Unlock()
		return runner.ErrNotLoaded
	}
	st.ActiveState, st.SubState, st.Since = active, sub, time.Now()
	r.units[name] = st
	r.mu.Unlock()
	r.notify()
	return nil
}

func (r *simRunner) Start(_ context.Context, name string) error {
	return r.set(name, "active", "running")
}

func (r *simRunner) Stop(_ context.Context, name string) error {
	return r.set(name, "inactive", "dead")
}

func (r *simRunner) Unload(_ context.Context, name string) error {
	r.mu.Lock()
	_, ok := r.units[name]
	delete(r.units, name)
	r.mu.Unlock()
	if !ok {
		return runner.ErrNotLoaded
	}
	r.notify()
	return nil
}

func (r *simRunner) States() map[string]runner.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.units)
}

func (r *simRunner) Status(name string) (runner.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.units[name]
	if !ok {
		return runner.Status{}, runner.ErrNotLoaded
	}
	return runner.Status{Name: name, State: st}, nil
}

func (r *simRunner) Changed() <-chan struct{} { return r.changed }

var _ runner.Runner = (*simRunner)(nil)

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// StateView is a watch-fed copy of states/ and jobs/ for readers that poll
// them, such as the API's GET /fleet/v1/state: a read copies from memory
// instead of reading and decoding every unit's state from etcd, so a
// client polling every millisecond costs fleetd little and sees a state
// one watch delivery after it was written. It starts following at its
// first read, on the context given to NewStateView, and stops at Close.
// While etcd cannot be reached, reads wait for the copy to be read again
// and fail as the store's own reads would.
type StateView struct {
	s      *Store
	base   context.Context
	m      mirrored
	states map[string]fleet.UnitState // by key
	jobs   map[string]JobRecord       // by key
	err    error                      // a value that could not be decoded
}

// NewStateView returns a StateView whose watches live until ctx ends or
// Close.
func (s *Store) NewStateView(ctx context.Context) *StateView {
	v := &StateView{s: s, base: ctx}
	v.m.init(s, "unit states", mirrorHandler{
		prefixes: []string{s.layout.StatesDir(), s.layout.JobsDir()},
		reset:    v.decode,
		apply:    v.apply,
	})
	return v
}

// Close stops following.
func (v *StateView) Close() { v.m.stop(true) }

// UnitStates is Store.UnitStates from the copy.
func (v *StateView) UnitStates(ctx context.Context) ([]fleet.UnitState, error) {
	if err := v.lock(ctx); err != nil {
		return nil, err
	}
	defer v.m.mu.Unlock()
	if v.err != nil {
		return nil, v.err
	}
	out := make([]fleet.UnitState, 0, len(v.states))
	for _, st := range v.states {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].MachineID < out[j].MachineID
	})
	return out, nil
}

// AllJobs is Store.AllJobs from the copy.
func (v *StateView) AllJobs(ctx context.Context) ([]JobRecord, error) {
	if err := v.lock(ctx); err != nil {
		return nil, err
	}
	defer v.m.mu.Unlock()
	if v.err != nil {
		return nil, v.err
	}
	out := make([]JobRecord, 0, len(v.jobs))
	for _, r := range v.jobs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Unit != out[j].Unit {
			return out[i].Unit < out[j].Unit
		}
		return out[i].Machine < out[j].Machine
	})
	return out, nil
}

// lock waits for the copy (bounded by ctx and the store's timeout); the
// Mirror it may start lives on v.base, not on the reader's ctx.
func (v *StateView) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: unit states: %w", err)
	}
	return v.m.lock(v.base)
}

func (v *StateView) decode(kvs []etcdkv.KV, _ int64) func() error {
	states := map[string]fleet.UnitState{}
	jobs := map[string]JobRecord{}
	var err error
	for i := range kvs {
		if derr := v.put(states, jobs, kvs[i].Key, kvs[i].Value); derr != nil && err == nil {
			err = derr
		}
	}
	return func() error {
		v.states, v.jobs, v.err = states, jobs, err
		return err
	}
}

// apply is called with v.m.mu held; a value it cannot decode stops the
// Mirror, so that the next read reads everything again.
func (v *StateView) apply(b etcdkv.WatchBatch) {
	for i := range b.Events {
		ev := &b.Events[i]
		if ev.Type == etcdkv.EventDelete {
			delete(v.states, ev.KV.Key)
			delete(v.jobs, ev.KV.Key)
			continue
		}
		if err := v.put(v.states, v.jobs, ev.KV.Key, ev.KV.Value); err != nil {
			v.m.stopLocked()
			return
		}
	}
}

// put decodes one key of states/ or jobs/ into the maps.
func (v *StateView) put(states map[string]fleet.UnitState, jobs map[string]JobRecord, key string, value []byte) error {
	l := v.s.layout
	if strings.HasPrefix(key, l.JobsDir()) {
		r, ok, err := decodeJob(l, key, value)
		if err != nil {
			return fmt.Errorf("store: jobs: %w", err)
		}
		if ok {
			jobs[key] = r
		}
		return nil
	}
	machine, unit, ok := splitTwo(key, l.StatesDir())
	if !ok {
		return nil
	}
	var st fleet.UnitState
	if err := json.Unmarshal(value, &st); err != nil {
		return fmt.Errorf("store: unit states: decode %q: %w", key, err)
	}
	st.MachineID, st.Name = machine, unit
	states[key] = st
	return nil
}

package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ScheduleFollower is an agent's in-memory copy of its machine's schedule
// (schedule/<machine>/): read once, then kept up to date by the one watch
// on that prefix, each event applied as it comes, so a wake-up costs no
// read. A failed watch, or Invalidate, makes the next Entries read the
// prefix again and restart the watch.
type ScheduleFollower struct {
	s       *Store
	machine string

	mu      sync.Mutex
	loaded  bool
	entries map[string]ScheduleEntry // by unit
	stop    context.CancelFunc
	wake    chan struct{}
}

// FollowSchedule returns a follower of machineID's schedule; its first
// Entries call reads the schedule and starts the watch.
func (s *Store) FollowSchedule(machineID string) *ScheduleFollower {
	return &ScheduleFollower{s: s, machine: machineID, wake: make(chan struct{}, 1)}
}

// Wake receives (coalesced) after a change was applied and after the watch
// failed.
func (f *ScheduleFollower) Wake() <-chan struct{} { return f.wake }

func (f *ScheduleFollower) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Close stops the watch.
func (f *ScheduleFollower) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
	f.loaded = false
}

// Invalidate makes the next Entries read the schedule again.
func (f *ScheduleFollower) Invalidate() { f.Close() }

// Entries returns the machine's entries sorted by unit, as MachineSchedule
// does. ctx bounds the watch it may start.
func (f *ScheduleFollower) Entries(ctx context.Context) ([]ScheduleEntry, error) {
	f.mu.Lock()
	loaded := f.loaded
	f.mu.Unlock()
	if !loaded {
		if err := f.load(ctx); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	es := make([]ScheduleEntry, 0, len(f.entries))
	for _, e := range f.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b ScheduleEntry) int { return strings.Compare(a.Unit, b.Unit) })
	return es, nil
}

func (f *ScheduleFollower) load(ctx context.Context) error {
	f.Close()
	es, rev, err := f.s.MachineSchedule(ctx, f.machine)
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	f.mu.Lock()
	f.entries = make(map[string]ScheduleEntry, len(es))
	for _, e := range es {
		f.entries[e.Unit] = e
	}
	f.loaded = true
	f.stop = stop
	f.mu.Unlock()
	dir := f.s.layout.MachineScheduleDir(f.machine)
	wch := f.s.cli.Watch(clientv3.WithRequireLeader(wctx), dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	go func() {
		for resp := range wch {
			if resp.Err() != nil || resp.Canceled {
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			f.mu.Lock()
			if wctx.Err() != nil {
				f.mu.Unlock()
				return
			}
			bad := false
			for _, ev := range resp.Events {
				unit := strings.TrimPrefix(string(ev.Kv.Key), dir)
				if ev.Type == clientv3.EventTypeDelete {
					delete(f.entries, unit)
					continue
				}
				var v scheduleValue
				if err := json.Unmarshal(ev.Kv.Value, &v); err != nil {
					bad = true
					continue
				}
				f.entries[unit] = ScheduleEntry{Unit: unit, Machine: f.machine, Hash: v.Hash, DesiredState: v.DesiredState}
			}
			if bad {
				f.loaded = false
				stop()
			}
			f.mu.Unlock()
			f.notify()
			if bad {
				return
			}
		}
		if wctx.Err() != nil {
			return
		}
		f.mu.Lock()
		if wctx.Err() == nil {
			f.loaded = false
			stop()
		}
		f.mu.Unlock()
		f.notify()
	}()
	return nil
}

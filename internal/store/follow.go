package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// ScheduleFollower is an agent's in-memory copy of its machine's schedule
// (schedule/<machine>/), kept by one etcdkv.Mirror: read once, then kept up
// to date by the one watch on that prefix, each event applied as it comes,
// so a wake-up costs no read. A failed watch makes the Mirror read the
// prefix again (and Entries wait for that read); an undecodable entry, or
// Invalidate, stop the Mirror, so that the next Entries starts a new one.
type ScheduleFollower struct {
	s       *Store
	machine string
	dir     string
	m       mirrored

	// Guarded by m.mu.
	entries map[string]ScheduleEntry // by unit
	err     error                    // decoding the last full read failed
}

// FollowSchedule returns a follower of machineID's schedule; its first
// Entries call reads the schedule and starts the watch.
func (s *Store) FollowSchedule(machineID string) *ScheduleFollower {
	f := &ScheduleFollower{s: s, machine: machineID, dir: s.layout.MachineScheduleDir(machineID)}
	f.m.init(s, "schedule of "+machineID, mirrorHandler{
		prefixes: []string{f.dir},
		reset:    f.decode,
		apply:    f.apply,
	})
	return f
}

// Wake receives (coalesced) after a change was applied and after the watch
// failed.
func (f *ScheduleFollower) Wake() <-chan struct{} { return f.m.wake }

// Close stops the watch (and returns once it has stopped).
func (f *ScheduleFollower) Close() { f.m.stop(true) }

// Invalidate makes the next Entries read the schedule again.
func (f *ScheduleFollower) Invalidate() { f.m.stop(false) }

// Entries returns the machine's entries sorted by unit, as MachineSchedule
// does. ctx bounds the watch it may start; a call while the schedule is
// being read (again) waits for that read, bounded by ctx and twice the
// store's request timeout.
func (f *ScheduleFollower) Entries(ctx context.Context) ([]ScheduleEntry, error) {
	if err := f.m.lock(ctx); err != nil {
		return nil, err
	}
	defer f.m.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	es := make([]ScheduleEntry, 0, len(f.entries))
	for _, e := range f.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b ScheduleEntry) int { return strings.Compare(a.Unit, b.Unit) })
	return es, nil
}

// decode decodes a full read of the prefix, as MachineSchedule does.
func (f *ScheduleFollower) decode(kvs []etcdkv.KV, _ int64) func() error {
	entries := make(map[string]ScheduleEntry, len(kvs))
	var err error
	for i := range kvs {
		unit := strings.TrimPrefix(kvs[i].Key, f.dir)
		if unit == "" {
			continue
		}
		e, derr := f.entry(unit, kvs[i].Value)
		if derr != nil {
			if err == nil {
				err = fmt.Errorf("store: schedule of %s: decode %q: %w", f.machine, kvs[i].Key, derr)
			}
			continue
		}
		entries[unit] = e
	}
	return func() error {
		f.entries, f.err = entries, err
		return err
	}
}

// apply is called with f.m.mu held. An entry it cannot decode stops the
// Mirror: the next Entries reads everything again (and reports the error
// if the entry is still bad).
func (f *ScheduleFollower) apply(b etcdkv.WatchBatch) {
	for i := range b.Events {
		ev := &b.Events[i]
		unit := strings.TrimPrefix(ev.KV.Key, f.dir)
		if ev.Type == etcdkv.EventDelete {
			delete(f.entries, unit)
			continue
		}
		e, err := f.entry(unit, ev.KV.Value)
		if err != nil {
			f.m.stopLocked()
			return
		}
		f.entries[unit] = e
	}
}

func (f *ScheduleFollower) entry(unit string, value []byte) (ScheduleEntry, error) {
	var v scheduleValue
	if err := json.Unmarshal(value, &v); err != nil {
		return ScheduleEntry{}, err
	}
	return ScheduleEntry{Unit: unit, Machine: f.machine, Hash: v.Hash, DesiredState: v.DesiredState}, nil
}

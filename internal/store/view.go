package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// View is the engine leader's in-memory copy of its inputs, so that a round
// does not re-read and re-decode the whole keyspace. It is kept by one
// etcdkv.Mirror:
//
//   - units/, machines/ and metadata/ are read at one revision, together
//     with schedule/ and reasons/, and then followed by watches (one per
//     prefix) that apply each event to the copy, decoded once, and wake the
//     leader;
//   - schedule/ and reasons/ are written only by the leader (API deletes of
//     reasons/ of destroyed units aside, which the leader's next diff
//     deletes again harmlessly), so they are read but not watched: the
//     leader keeps them up to date with Applied after each successful
//     Apply instead of watching its own writes.
//
// The first Snapshot starts the Mirror and waits for its first read. A
// watch that fails (compaction, lost etcd leader, closed client) makes the
// Mirror read everything again, and Snapshot wait for that read; an Apply
// that fails, or Invalidate, stop the Mirror, so that the next Snapshot
// starts a new one. A View is bound to one leadership: create it after
// Campaign and Close it when the leadership ends.
type View struct {
	s    *Store
	m    mirrored
	dirs [7]string // units/, machines/, metadata/, rollouts/, jobs/ (watched); schedule/, reasons/ (read only)

	// Guarded by m.mu.
	rev      int64 // of the last full read
	err      error // decoding the last full read failed
	units    map[string]fleet.Unit
	machines map[string]fleet.Machine // as registered, without metadata overrides
	metadata map[string]map[string]string
	schedule map[[2]string]ScheduleEntry // by (unit, machine)
	reasons  map[string]fleet.Reason
	rollouts map[string]rollout.Rollout
	jobs     map[[2]string]JobRecord // by (unit, machine)
	// pending are the Changes Applied while the Mirror was reading
	// again: the read may predate them, so they are applied over it.
	pending []Changes
}

// NewView returns an empty view; its first Snapshot loads it.
func (s *Store) NewView() *View {
	l := s.layout
	v := &View{s: s, dirs: [...]string{l.UnitsDir(), l.MachinesDir(), l.MetadataDir(), l.RolloutsDir(), l.JobsDir(), l.ScheduleDir(), l.ReasonsDir()}}
	v.m.init(s, "view", mirrorHandler{
		prefixes: v.dirs[:5:5],
		listOnly: v.dirs[5:],
		reset:    v.decode,
		apply:    v.apply,
		stopped:  func() { v.pending = nil },
	})
	return v
}

// Wake receives (coalesced) after a change to units/, machines/,
// metadata/, rollouts/ or jobs/ was applied to the view, and after a watch
// failed.
func (v *View) Wake() <-chan struct{} { return v.m.wake }

// Close stops the watches (and returns once they have stopped).
func (v *View) Close() { v.m.stop(true) }

// Invalidate makes the next Snapshot read everything again.
func (v *View) Invalidate() { v.m.stop(false) }

// Snapshot returns the view's content in Snapshot's form (sorted as
// Snapshot sorts). Rev is the revision of the last full read. The first
// call, and the first after Invalidate, starts the Mirror that reads
// everything from etcd and then follows the watches (ctx bounds the
// watches); a call while the view is being read (again) waits for that
// read, bounded by ctx and twice the store's request timeout.
func (v *View) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := v.m.lock(ctx); err != nil {
		return Snapshot{}, err
	}
	defer v.m.mu.Unlock()
	if v.err != nil {
		return Snapshot{}, v.err
	}
	snap := Snapshot{Rev: v.rev, Reasons: maps.Clone(v.reasons), Rollouts: maps.Clone(v.rollouts)}
	snap.Units = make([]fleet.Unit, 0, len(v.units))
	for _, u := range v.units {
		snap.Units = append(snap.Units, u)
	}
	slices.SortFunc(snap.Units, func(a, b fleet.Unit) int { return strings.Compare(a.Name, b.Name) })
	snap.Machines = make([]fleet.Machine, 0, len(v.machines))
	for _, m := range v.machines {
		snap.Machines = append(snap.Machines, withOverrides(m, v.metadata[m.ID]))
	}
	slices.SortFunc(snap.Machines, func(a, b fleet.Machine) int { return strings.Compare(a.ID, b.ID) })
	snap.Schedule = make([]ScheduleEntry, 0, len(v.schedule))
	for _, e := range v.schedule {
		snap.Schedule = append(snap.Schedule, e)
	}
	slices.SortFunc(snap.Schedule, func(a, b ScheduleEntry) int {
		if c := strings.Compare(a.Unit, b.Unit); c != 0 {
			return c
		}
		return strings.Compare(a.Machine, b.Machine)
	})
	snap.Jobs = make(map[string][]JobRecord)
	for _, r := range v.jobs {
		snap.Jobs[r.Unit] = append(snap.Jobs[r.Unit], r)
	}
	for _, rs := range snap.Jobs {
		slices.SortFunc(rs, func(a, b JobRecord) int { return strings.Compare(a.Machine, b.Machine) })
	}
	return snap, nil
}

// Applied records a successful Apply of c in the view.
func (v *View) Applied(c Changes) {
	v.m.mu.Lock()
	defer v.m.mu.Unlock()
	switch {
	case v.m.cancel == nil:
		// Nothing runs: the next Snapshot reads c's writes.
	case !v.m.loaded:
		v.pending = append(v.pending, c)
	default:
		v.applyChanges(c)
	}
}

// applyChanges is called with v.m.mu held.
func (v *View) applyChanges(c Changes) {
	for _, e := range c.Delete {
		delete(v.schedule, [2]string{e.Unit, e.Machine})
	}
	for _, u := range c.DeleteReasons {
		delete(v.reasons, u)
	}
	for _, e := range c.Put {
		v.schedule[[2]string{e.Unit, e.Machine}] = e
	}
	for _, r := range c.PutReasons {
		v.reasons[r.Unit] = r
	}
}

// decode decodes a full read (the keys of units/, machines/, metadata/,
// rollouts/, jobs/, schedule/ and reasons/, in that order) as Store.Snapshot does, and
// returns what installs it.
func (v *View) decode(kvs []etcdkv.KV, rev int64) func() error {
	dirs := &v.dirs
	// The keys come grouped by prefix, in the order of dirs.
	var groups [len(dirs)][]etcdkv.KV
	for i, rest := 0, kvs; i < len(dirs); i++ {
		n := 0
		for n < len(rest) && strings.HasPrefix(rest[n].Key, dirs[i]) {
			n++
		}
		groups[i], rest = rest[:n], rest[n:]
	}
	var err error
	fail := func(key string, e error) {
		if err == nil {
			err = fmt.Errorf("store: view: decode %q: %w", key, e)
		}
	}
	units := make(map[string]fleet.Unit, len(groups[0]))
	for i := range groups[0] {
		kv := &groups[0][i]
		name := kv.Key[len(dirs[0]):]
		var u fleet.Unit
		if e := json.Unmarshal(kv.Value, &u); e != nil {
			fail(kv.Key, e)
			continue
		}
		u.Name = name
		units[name] = u
	}
	machines := make(map[string]fleet.Machine, len(groups[1]))
	for i := range groups[1] {
		kv := &groups[1][i]
		m, e := v.decodeMachine(kv)
		if e != nil {
			fail(kv.Key, e)
			continue
		}
		machines[m.ID] = m
	}
	metadata := map[string]map[string]string{}
	for i := range groups[2] {
		v.putMetadata(metadata, &groups[2][i])
	}
	rollouts := make(map[string]rollout.Rollout, len(groups[3]))
	for i := range groups[3] {
		kv := &groups[3][i]
		var r rollout.Rollout
		if e := json.Unmarshal(kv.Value, &r); e != nil {
			fail(kv.Key, e)
			continue
		}
		rollouts[kv.Key[len(dirs[3]):]] = r
	}
	jobs := make(map[[2]string]JobRecord, len(groups[4]))
	for i := range groups[4] {
		kv := &groups[4][i]
		r, ok, e := decodeJob(v.s.layout, kv.Key, kv.Value)
		if e != nil {
			fail(kv.Key, e)
			continue
		}
		if ok {
			jobs[[2]string{r.Unit, r.Machine}] = r
		}
	}
	schedule := make(map[[2]string]ScheduleEntry, len(groups[5]))
	for i := range groups[5] {
		kv := &groups[5][i]
		machine, unit, ok := splitTwo(kv.Key, dirs[5])
		if !ok {
			continue
		}
		var sv scheduleValue
		if e := json.Unmarshal(kv.Value, &sv); e != nil {
			fail(kv.Key, e)
			continue
		}
		schedule[[2]string{unit, machine}] = ScheduleEntry{Unit: unit, Machine: machine, Hash: sv.Hash, DesiredState: sv.DesiredState}
	}
	reasons := make(map[string]fleet.Reason, len(groups[6]))
	for i := range groups[6] {
		kv := &groups[6][i]
		unit := kv.Key[len(dirs[6]):]
		var r fleet.Reason
		if e := json.Unmarshal(kv.Value, &r); e != nil {
			fail(kv.Key, e)
			continue
		}
		r.Unit = unit
		reasons[unit] = r
	}
	return func() error {
		v.rev, v.err = rev, err
		v.units, v.machines, v.metadata, v.schedule, v.reasons, v.rollouts, v.jobs = units, machines, metadata, schedule, reasons, rollouts, jobs
		// The read may predate writes Applied while it ran: they are the
		// leader's own, and applying them again is harmless.
		for _, c := range v.pending {
			v.applyChanges(c)
		}
		v.pending = nil
		return err
	}
}

// apply applies a watch batch of units/, machines/, metadata/,
// rollouts/ or jobs/; it is
// called with v.m.mu held.
func (v *View) apply(b etcdkv.WatchBatch) {
	dir := b.Key
	switch dir {
	case v.dirs[0]:
		for i := range b.Events {
			ev := &b.Events[i]
			name := strings.TrimPrefix(ev.KV.Key, dir)
			var u fleet.Unit
			if ev.Type == etcdkv.EventDelete || json.Unmarshal(ev.KV.Value, &u) != nil {
				delete(v.units, name)
				continue
			}
			u.Name = name
			v.units[name] = u
		}
	case v.dirs[1]:
		for i := range b.Events {
			ev := &b.Events[i]
			id := strings.TrimPrefix(ev.KV.Key, dir)
			if ev.Type == etcdkv.EventDelete {
				delete(v.machines, id)
				continue
			}
			if m, err := v.decodeMachine(&ev.KV); err == nil {
				v.machines[id] = m
			} else {
				delete(v.machines, id)
			}
		}
	case v.dirs[3]:
		for i := range b.Events {
			ev := &b.Events[i]
			unit := strings.TrimPrefix(ev.KV.Key, dir)
			var r rollout.Rollout
			if ev.Type == etcdkv.EventDelete || json.Unmarshal(ev.KV.Value, &r) != nil {
				delete(v.rollouts, unit)
				continue
			}
			v.rollouts[unit] = r
		}
	case v.dirs[4]:
		for i := range b.Events {
			ev := &b.Events[i]
			k, ok := v.s.layout.Parse(ev.KV.Key)
			if !ok {
				continue
			}
			r, ok, err := decodeJob(v.s.layout, ev.KV.Key, ev.KV.Value)
			if ev.Type == etcdkv.EventDelete || !ok || err != nil {
				delete(v.jobs, [2]string{k.Unit, k.Machine})
				continue
			}
			v.jobs[[2]string{r.Unit, r.Machine}] = r
		}
	case v.dirs[2]:
		for i := range b.Events {
			ev := &b.Events[i]
			if ev.Type != etcdkv.EventDelete {
				v.putMetadata(v.metadata, &ev.KV)
				continue
			}
			if id, key, ok := splitTwo(ev.KV.Key, dir); ok {
				delete(v.metadata[id], key)
				if len(v.metadata[id]) == 0 {
					delete(v.metadata, id)
				}
			}
		}
	}
}

func (v *View) decodeMachine(kv *etcdkv.KV) (fleet.Machine, error) {
	id := strings.TrimPrefix(kv.Key, v.dirs[1])
	var m fleet.Machine
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return fleet.Machine{}, err
	}
	m.ID = id
	return m, nil
}

func (v *View) putMetadata(md map[string]map[string]string, kv *etcdkv.KV) {
	id, key, ok := splitTwo(kv.Key, v.dirs[2])
	if !ok {
		return
	}
	if md[id] == nil {
		md[id] = map[string]string{}
	}
	md[id][key] = string(kv.Value)
}

package store

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
)

// View is the engine leader's in-memory copy of its inputs, so that a round
// does not re-read and re-decode the whole keyspace:
//
//   - units/, machines/ and metadata/ are read once (one Snapshot) and then
//     followed by watches (one per prefix) that apply each event to the
//     copy, decoded once, and wake the leader;
//   - schedule/ and reasons/ are written only by the leader (API deletes of
//     reasons/ of destroyed units aside, which the leader's next diff
//     deletes again harmlessly), so the leader keeps them up to date with
//     Applied after each successful Apply instead of watching its own writes.
//
// A watch that fails (compaction, lost etcd leader, closed client), an
// Apply that fails, or Invalidate, make the next Snapshot read everything
// again and restart the watches. A View is bound to one leadership: create
// it after Campaign and Close it when the leadership ends.
type View struct {
	s *Store

	mu       sync.Mutex
	loaded   bool
	rev      int64
	units    map[string]fleet.Unit
	machines map[string]fleet.Machine // as registered, without metadata overrides
	metadata map[string]map[string]string
	schedule map[[2]string]ScheduleEntry // by (unit, machine)
	reasons  map[string]fleet.Reason

	wake        chan struct{}
	stopWatches context.CancelFunc
}

// NewView returns an empty view; its first Snapshot loads it.
func (s *Store) NewView() *View {
	return &View{s: s, wake: make(chan struct{}, 1)}
}

// Wake receives (coalesced) after a change to units/, machines/ or
// metadata/ was applied to the view, and after a watch failed.
func (v *View) Wake() <-chan struct{} { return v.wake }

func (v *View) notify() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// Close stops the watches.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopWatches != nil {
		v.stopWatches()
		v.stopWatches = nil
	}
	v.loaded = false
}

// Invalidate makes the next Snapshot read everything again.
func (v *View) Invalidate() { v.Close() }

// Snapshot returns the view's content in Snapshot's form (sorted as
// Snapshot sorts). Rev is the revision of the last full read. The first
// call, and the first after a failure, reads everything from etcd and
// starts the watches; ctx bounds the watches.
func (v *View) Snapshot(ctx context.Context) (Snapshot, error) {
	v.mu.Lock()
	loaded := v.loaded
	v.mu.Unlock()
	if !loaded {
		if err := v.load(ctx); err != nil {
			return Snapshot{}, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	snap := Snapshot{Rev: v.rev, Reasons: maps.Clone(v.reasons)}
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
	return snap, nil
}

// Applied records a successful Apply of c in the view.
func (v *View) Applied(c Changes) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.loaded {
		return
	}
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

func (v *View) load(ctx context.Context) error {
	v.Close()
	snap, err := v.s.Snapshot(ctx)
	if err != nil {
		return err
	}
	// Machines and metadata as stored, before merging: read them again
	// at the snapshot's revision.
	rctx, cancel := v.s.req(ctx)
	resp, err := v.s.cli.Txn(rctx).Then(
		clientv3.OpGet(v.s.layout.MachinesDir(), clientv3.WithPrefix(), clientv3.WithRev(snap.Rev)),
		clientv3.OpGet(v.s.layout.MetadataDir(), clientv3.WithPrefix(), clientv3.WithRev(snap.Rev)),
	).Commit()
	cancel()
	if err != nil {
		return err
	}
	machines := map[string]fleet.Machine{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		if m, ok := v.decodeMachine(kv); ok {
			machines[m.ID] = m
		}
	}
	metadata := map[string]map[string]string{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		v.putMetadata(metadata, kv)
	}

	wctx, stop := context.WithCancel(ctx)
	v.mu.Lock()
	v.loaded = true
	v.rev = snap.Rev
	v.units = make(map[string]fleet.Unit, len(snap.Units))
	for _, u := range snap.Units {
		v.units[u.Name] = u
	}
	v.machines = machines
	v.metadata = metadata
	v.schedule = make(map[[2]string]ScheduleEntry, len(snap.Schedule))
	for _, e := range snap.Schedule {
		v.schedule[[2]string{e.Unit, e.Machine}] = e
	}
	v.reasons = snap.Reasons
	v.stopWatches = stop
	v.mu.Unlock()

	for _, dir := range []string{v.s.layout.UnitsDir(), v.s.layout.MachinesDir(), v.s.layout.MetadataDir()} {
		wch := v.s.cli.Watch(clientv3.WithRequireLeader(wctx), dir, clientv3.WithPrefix(), clientv3.WithRev(snap.Rev+1))
		go v.follow(wctx, stop, dir, wch)
	}
	return nil
}

// follow applies one watch's events until it fails; then it marks the view
// for a full read and wakes the leader.
func (v *View) follow(ctx context.Context, stop context.CancelFunc, dir string, wch clientv3.WatchChan) {
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			break
		}
		if len(resp.Events) == 0 {
			continue
		}
		v.mu.Lock()
		if ctx.Err() != nil {
			v.mu.Unlock()
			return
		}
		for _, ev := range resp.Events {
			v.applyEvent(dir, ev)
		}
		v.mu.Unlock()
		v.notify()
	}
	if ctx.Err() != nil {
		return
	}
	v.mu.Lock()
	if ctx.Err() == nil {
		v.loaded = false
		stop()
	}
	v.mu.Unlock()
	v.notify()
}

// applyEvent is called with v.mu held.
func (v *View) applyEvent(dir string, ev *clientv3.Event) {
	kv := ev.Kv
	del := ev.Type == clientv3.EventTypeDelete
	switch dir {
	case v.s.layout.UnitsDir():
		name := strings.TrimPrefix(string(kv.Key), dir)
		var u fleet.Unit
		if del || json.Unmarshal(kv.Value, &u) != nil {
			delete(v.units, name)
			return
		}
		u.Name = name
		v.units[name] = u
	case v.s.layout.MachinesDir():
		id := strings.TrimPrefix(string(kv.Key), dir)
		if del {
			delete(v.machines, id)
			return
		}
		if m, ok := v.decodeMachine(kv); ok {
			v.machines[id] = m
		} else {
			delete(v.machines, id)
		}
	case v.s.layout.MetadataDir():
		if del {
			if id, key, ok := splitTwo(string(kv.Key), dir); ok {
				delete(v.metadata[id], key)
				if len(v.metadata[id]) == 0 {
					delete(v.metadata, id)
				}
			}
			return
		}
		v.putMetadata(v.metadata, kv)
	}
}

func (v *View) decodeMachine(kv *mvccpb.KeyValue) (fleet.Machine, bool) {
	id := strings.TrimPrefix(string(kv.Key), v.s.layout.MachinesDir())
	var m fleet.Machine
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return fleet.Machine{}, false
	}
	m.ID = id
	return m, true
}

func (v *View) putMetadata(md map[string]map[string]string, kv *mvccpb.KeyValue) {
	id, key, ok := splitTwo(string(kv.Key), v.s.layout.MetadataDir())
	if !ok {
		return
	}
	if md[id] == nil {
		md[id] = map[string]string{}
	}
	md[id][key] = string(kv.Value)
}

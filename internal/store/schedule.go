package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/etcdkv"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
)

// ScheduleEntry places a unit on a machine: schedule/<Machine>/<Unit>, whose
// value holds Hash and DesiredState.
type ScheduleEntry struct {
	Unit         string         `json:"unit"`
	Machine      string         `json:"machine"`
	Hash         string         `json:"hash"`
	DesiredState fleet.JobState `json:"desiredState"`
}

// scheduleValue is the stored value of a schedule/ key.
type scheduleValue struct {
	Hash         string         `json:"hash"`
	DesiredState fleet.JobState `json:"desiredState"`
}

// Snapshot is the engine's input, read at one revision.
type Snapshot struct {
	Rev      int64
	Units    []fleet.Unit    // sorted by name
	Machines []fleet.Machine // live, metadata merged, sorted by ID
	Schedule []ScheduleEntry // sorted by (unit, machine)
	Reasons  map[string]fleet.Reason
	// Rollouts are the rollout records by unit (the engine pins the
	// machines of a global unit being rolled: rollout.Pin).
	Rollouts map[string]rollout.Rollout
	// Jobs are the records of Job units' runs by unit, sorted by machine
	// (the engine does not place a job that succeeded).
	Jobs map[string][]JobRecord
}

// Snapshot reads units, machines, metadata, schedule and reasons in one
// read-only transaction, so at one revision.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).Then(
		clientv3.OpGet(s.layout.UnitsDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.MachinesDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.MetadataDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.ScheduleDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.ReasonsDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.RolloutsDir(), clientv3.WithPrefix()),
		clientv3.OpGet(s.layout.JobsDir(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	r := func(i int) []*mvccpb.KeyValue { return resp.Responses[i].GetResponseRange().Kvs }
	snap := Snapshot{Rev: resp.Header.Revision}
	if snap.Units, err = s.decodeUnits(&clientv3.GetResponse{Kvs: r(0)}); err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	if snap.Machines, err = s.decodeMachines(r(1), r(2)); err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	if snap.Schedule, err = s.decodeSchedule(r(3)); err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	if snap.Reasons, err = s.decodeReasons(r(4)); err != nil {
		return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
	}
	snap.Rollouts = make(map[string]rollout.Rollout, len(r(5)))
	for _, kv := range r(5) {
		var ro rollout.Rollout
		if err := json.Unmarshal(kv.Value, &ro); err != nil {
			return Snapshot{}, fmt.Errorf("store: snapshot: decode %s: %w", kv.Key, err)
		}
		snap.Rollouts[strings.TrimPrefix(string(kv.Key), s.layout.RolloutsDir())] = ro
	}
	snap.Jobs = make(map[string][]JobRecord)
	for _, kv := range r(6) { // sorted by key: by (unit, machine)
		jr, ok, err := decodeJob(s.layout, string(kv.Key), kv.Value)
		if err != nil {
			return Snapshot{}, fmt.Errorf("store: snapshot: %w", err)
		}
		if ok {
			snap.Jobs[jr.Unit] = append(snap.Jobs[jr.Unit], jr)
		}
	}
	return snap, nil
}

// Schedule returns every schedule entry, sorted by (unit, machine).
func (s *Store) Schedule(ctx context.Context) ([]ScheduleEntry, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.ScheduleDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: schedule: %w", err)
	}
	es, err := s.decodeSchedule(resp.Kvs)
	if err != nil {
		return nil, fmt.Errorf("store: schedule: %w", err)
	}
	return es, nil
}

// MachineSchedule returns the entries of one machine, sorted by unit, and
// the revision they were read at (watch from rev+1 to see later changes).
func (s *Store) MachineSchedule(ctx context.Context, machineID string) ([]ScheduleEntry, int64, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.MachineScheduleDir(machineID), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("store: schedule of %s: %w", machineID, err)
	}
	es, err := s.decodeSchedule(resp.Kvs)
	if err != nil {
		return nil, 0, fmt.Errorf("store: schedule of %s: %w", machineID, err)
	}
	return es, resp.Header.Revision, nil
}

func (s *Store) decodeSchedule(kvs []*mvccpb.KeyValue) ([]ScheduleEntry, error) {
	es := make([]ScheduleEntry, 0, len(kvs))
	for _, kv := range kvs {
		machine, unit, ok := splitTwo(string(kv.Key), s.layout.ScheduleDir())
		if !ok {
			continue
		}
		var v scheduleValue
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		es = append(es, ScheduleEntry{Unit: unit, Machine: machine, Hash: v.Hash, DesiredState: v.DesiredState})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].Unit != es[j].Unit {
			return es[i].Unit < es[j].Unit
		}
		return es[i].Machine < es[j].Machine
	})
	return es, nil
}

// Placements returns the machines a unit is scheduled on, sorted.
func (s *Store) Placements(ctx context.Context, unit string) ([]string, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	dir := s.layout.UnitPlacementsDir(unit)
	resp, err := s.cli.Get(rctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("store: placements of %q: %w", unit, err)
	}
	ms := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		ms = append(ms, strings.TrimPrefix(string(kv.Key), dir))
	}
	sort.Strings(ms)
	return ms, nil
}

// Reasons returns why units are not placed, by unit name.
func (s *Store) Reasons(ctx context.Context) (map[string]fleet.Reason, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.ReasonsDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: reasons: %w", err)
	}
	rs, err := s.decodeReasons(resp.Kvs)
	if err != nil {
		return nil, fmt.Errorf("store: reasons: %w", err)
	}
	return rs, nil
}

// Reason returns why one unit is not placed, if the leader recorded a reason.
func (s *Store) Reason(ctx context.Context, unit string) (fleet.Reason, bool, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Reason(unit))
	if err != nil {
		return fleet.Reason{}, false, fmt.Errorf("store: reason of %q: %w", unit, err)
	}
	if len(resp.Kvs) == 0 {
		return fleet.Reason{}, false, nil
	}
	var r fleet.Reason
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return fleet.Reason{}, false, fmt.Errorf("store: reason of %q: decode: %w", unit, err)
	}
	r.Unit = unit
	return r, true, nil
}

func (s *Store) decodeReasons(kvs []*mvccpb.KeyValue) (map[string]fleet.Reason, error) {
	rs := make(map[string]fleet.Reason, len(kvs))
	for _, kv := range kvs {
		unit := strings.TrimPrefix(string(kv.Key), s.layout.ReasonsDir())
		var r fleet.Reason
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("decode reason %q: %w", unit, err)
		}
		r.Unit = unit
		rs[unit] = r
	}
	return rs, nil
}

// PutUnitStates writes unit states under states/<MachineID>/<Name> on lease
// (the machine's Presence lease), in transactions of at most MaxTxnOps.
func (s *Store) PutUnitStates(ctx context.Context, kvLease etcdkv.LeaseID, states []fleet.UnitState) error {
	lease := clientv3.LeaseID(kvLease)
	ops := make([]clientv3.Op, 0, len(states))
	seen := make(map[string]int, len(states))
	for _, st := range states {
		if st.MachineID == "" || st.Name == "" {
			return fmt.Errorf("store: put unit states: state without machine ID or unit name: %+v", st)
		}
		key := s.layout.State(st.MachineID, st.Name)
		op := clientv3.OpPut(key, mustJSON(st), clientv3.WithLease(lease))
		if i, ok := seen[key]; ok {
			ops[i] = op // a txn may not name a key twice; the last one wins
			continue
		}
		seen[key] = len(ops)
		ops = append(ops, op)
	}
	if err := s.commitChunks(ctx, ops); err != nil {
		return fmt.Errorf("store: put unit states: %w", err)
	}
	return nil
}

// DeleteUnitStates deletes the states of units on one machine.
func (s *Store) DeleteUnitStates(ctx context.Context, machineID string, units []string) error {
	ops := make([]clientv3.Op, 0, len(units))
	seen := make(map[string]bool, len(units))
	for _, u := range units {
		key := s.layout.State(machineID, u)
		if seen[key] {
			continue
		}
		seen[key] = true
		ops = append(ops, clientv3.OpDelete(key))
	}
	if err := s.commitChunks(ctx, ops); err != nil {
		return fmt.Errorf("store: delete unit states of %s: %w", machineID, err)
	}
	return nil
}

func (s *Store) commitChunks(ctx context.Context, ops []clientv3.Op) error {
	for _, chunk := range chunkOps(ops, MaxTxnOps) {
		rctx, cancel := s.req(ctx)
		_, err := s.cli.Txn(rctx).Then(chunk...).Commit()
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// UnitStates returns all reported unit states, sorted by (name, machine ID).
func (s *Store) UnitStates(ctx context.Context) ([]fleet.UnitState, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.StatesDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: unit states: %w", err)
	}
	sts := make([]fleet.UnitState, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		machine, unit, ok := splitTwo(string(kv.Key), s.layout.StatesDir())
		if !ok {
			continue
		}
		var st fleet.UnitState
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return nil, fmt.Errorf("store: unit states: decode %q: %w", kv.Key, err)
		}
		st.MachineID, st.Name = machine, unit
		sts = append(sts, st)
	}
	sort.Slice(sts, func(i, j int) bool {
		if sts[i].Name != sts[j].Name {
			return sts[i].Name < sts[j].Name
		}
		return sts[i].MachineID < sts[j].MachineID
	})
	return sts, nil
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/keys"
)

// Job results (JobRecord.Result).
const (
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// JobRecord is how one run of a Job unit ([X-Fleet] Job=true) ended on one
// machine: jobs/<unit>/<machine>, written by that machine's agent without a
// lease, so that it outlives the machine. A succeeded record for the
// unit's current hash keeps the unit from running again (the engine does
// not place it any more; the agent does not start it).
type JobRecord struct {
	Unit    string `json:"unit"`
	Machine string `json:"machineID"`
	// Result is JobSucceeded or JobFailed.
	Result string `json:"result"`
	// UnitResult is the runner's result of the run (systemd's: success,
	// exit-code, signal, timeout, core-dump, oom-kill, start-limit-hit).
	UnitResult string `json:"unitResult,omitempty"`
	// Exit is how the run's main process ended ("code=exited,
	// status=3/NOTIMPLEMENTED"; runner.State.Exit).
	Exit     string    `json:"exit,omitempty"`
	Hash     string    `json:"hash"`
	Finished time.Time `json:"finished"`
}

// Succeeded reports whether r is a success of the file with hash.
func (r JobRecord) Succeeded(hash string) bool {
	return r.Result == JobSucceeded && r.Hash == hash
}

// PutJob records how a run of a Job unit ended on a machine (no lease).
func (s *Store) PutJob(ctx context.Context, r JobRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: put job %s on %s: %w", r.Unit, r.Machine, err)
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Put(rctx, s.layout.Job(r.Unit, r.Machine), string(b)); err != nil {
		return fmt.Errorf("store: put job %s on %s: %w", r.Unit, r.Machine, err)
	}
	return nil
}

// Jobs returns the records of unit's runs, sorted by machine.
func (s *Store) Jobs(ctx context.Context, unit string) ([]JobRecord, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.UnitJobsDir(unit), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: jobs of %s: %w", unit, err)
	}
	out := make([]JobRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r, ok, err := decodeJob(s.layout, string(kv.Key), kv.Value)
		if err != nil {
			return nil, fmt.Errorf("store: jobs of %s: %w", unit, err)
		}
		if ok && r.Unit == unit {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Machine < out[j].Machine })
	return out, nil
}

// AllJobs returns every job record, sorted by (unit, machine).
func (s *Store) AllJobs(ctx context.Context) ([]JobRecord, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.JobsDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: jobs: %w", err)
	}
	out := make([]JobRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r, ok, err := decodeJob(s.layout, string(kv.Key), kv.Value)
		if err != nil {
			return nil, fmt.Errorf("store: jobs: %w", err)
		}
		if ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Unit != out[j].Unit {
			return out[i].Unit < out[j].Unit
		}
		return out[i].Machine < out[j].Machine
	})
	return out, nil
}

// MachineJobs returns machine's records of the named units, by unit (a
// unit without one is absent), read in one transaction per MaxTxnOps
// units.
func (s *Store) MachineJobs(ctx context.Context, machine string, units []string) (map[string]JobRecord, error) {
	out := make(map[string]JobRecord, len(units))
	for start := 0; start < len(units); start += MaxTxnOps {
		chunk := units[start:min(start+MaxTxnOps, len(units))]
		ops := make([]clientv3.Op, len(chunk))
		for i, u := range chunk {
			ops[i] = clientv3.OpGet(s.layout.Job(u, machine))
		}
		rctx, cancel := s.req(ctx)
		resp, err := s.cli.Txn(rctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store: jobs of %s: %w", machine, err)
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				rec, ok, err := decodeJob(s.layout, string(kv.Key), kv.Value)
				if err != nil {
					return nil, fmt.Errorf("store: jobs of %s: %w", machine, err)
				}
				if ok {
					out[rec.Unit] = rec
				}
			}
		}
	}
	return out, nil
}

// DeleteJobs deletes every record of unit's runs, so that it may run
// again; it returns how many there were.
func (s *Store) DeleteJobs(ctx context.Context, unit string) (int, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Delete(rctx, s.layout.UnitJobsDir(unit), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("store: delete jobs of %s: %w", unit, err)
	}
	return int(resp.Deleted), nil
}

// decodeJob decodes a jobs/<unit>/<machine> key and value; ok is false for
// a key outside that layout. The key's names win over the value's.
func decodeJob(l keys.Layout, key string, value []byte) (JobRecord, bool, error) {
	k, ok := l.Parse(key)
	if !ok || k.Kind != keys.Job {
		return JobRecord{}, false, nil
	}
	var r JobRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return JobRecord{}, false, fmt.Errorf("decode %s: %w", key, err)
	}
	r.Unit, r.Machine = k.Unit, k.Machine
	return r, true, nil
}

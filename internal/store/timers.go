package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TimerRecord is a .timer unit's record: timers/<timer>, written (without
// a lease, so that it outlives the machine) by internal/timerd on the
// machine that runs the timer. LastTrigger is the last slot fired: it is
// what makes a slot fire at most once across failovers (RecordTrigger is
// a compare-and-swap on it).
type TimerRecord struct {
	Timer     string `json:"timer"`
	Activates string `json:"activates"`
	// Machine runs the timer (the last one that wrote the record).
	Machine string `json:"machine"`
	// LastTrigger is the slot (unrandomized elapse time) last fired.
	LastTrigger time.Time `json:"lastTrigger,omitzero"`
	// Next is when the timer elapses next, as Machine computed it (zero:
	// no trigger armed).
	Next time.Time `json:"next,omitzero"`
}

func (s *Store) timersDir() string           { return s.layout.Prefix() + "timers/" }
func (s *Store) timerKey(name string) string { return s.timersDir() + name }

// getTimer reads a timer's record and its key's mod revision (0: absent).
func (s *Store) getTimer(ctx context.Context, name string) (TimerRecord, int64, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.timerKey(name))
	if err != nil {
		return TimerRecord{}, 0, err
	}
	if len(resp.Kvs) == 0 {
		return TimerRecord{}, 0, nil
	}
	var r TimerRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return TimerRecord{}, 0, fmt.Errorf("decode %s: %w", resp.Kvs[0].Key, err)
	}
	r.Timer = name
	return r, resp.Kvs[0].ModRevision, nil
}

// Timer returns a timer's record; ok is false when it has none.
func (s *Store) Timer(ctx context.Context, name string) (TimerRecord, bool, error) {
	r, rev, err := s.getTimer(ctx, name)
	if err != nil {
		return TimerRecord{}, false, fmt.Errorf("store: timer %s: %w", name, err)
	}
	return r, rev != 0, nil
}

// Timers returns every timer record, sorted by timer name.
func (s *Store) Timers(ctx context.Context) ([]TimerRecord, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.timersDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: timers: %w", err)
	}
	out := make([]TimerRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.timersDir())
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		var r TimerRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("store: timers: decode %s: %w", kv.Key, err)
		}
		r.Timer = name
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timer < out[j].Timer })
	return out, nil
}

// casTimer writes r over the record read at rev (0: absent), in one
// transaction that fails if the key changed since.
func (s *Store) casTimer(ctx context.Context, r TimerRecord, rev int64) (bool, error) {
	key := s.timerKey(r.Timer)
	cmp := clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	if rev == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmp).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// RecordTrigger records r (its LastTrigger the slot being fired) if the
// stored record's LastTrigger is still prev (zero: never fired, or no
// record): a compare-and-swap, so that of two machines firing the same
// slot only one succeeds. ok is false when the stored LastTrigger differs
// from prev (someone fired meanwhile); the caller must then not fire.
// The stored LastTrigger never goes back: r is refused (ok false) when it
// is not after the stored one.
func (s *Store) RecordTrigger(ctx context.Context, r TimerRecord, prev time.Time) (ok bool, err error) {
	for {
		cur, rev, err := s.getTimer(ctx, r.Timer)
		if err != nil {
			return false, fmt.Errorf("store: record trigger of %s: %w", r.Timer, err)
		}
		if !cur.LastTrigger.Equal(prev) || !r.LastTrigger.After(cur.LastTrigger) {
			return false, nil
		}
		ok, err := s.casTimer(ctx, r, rev)
		if err != nil {
			return false, fmt.Errorf("store: record trigger of %s: %w", r.Timer, err)
		}
		if ok {
			return true, nil
		}
		// The record changed (its Next, say): look again.
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("store: record trigger of %s: %w", r.Timer, err)
		}
	}
}

// UpdateTimer writes r's Activates, Machine and Next into the timer's
// record, keeping the stored LastTrigger (r's is ignored); nothing is
// written when they are unchanged. It returns the record as stored.
func (s *Store) UpdateTimer(ctx context.Context, r TimerRecord) (TimerRecord, error) {
	for {
		cur, rev, err := s.getTimer(ctx, r.Timer)
		if err != nil {
			return TimerRecord{}, fmt.Errorf("store: update timer %s: %w", r.Timer, err)
		}
		r.LastTrigger = cur.LastTrigger
		if rev != 0 && cur.Activates == r.Activates && cur.Machine == r.Machine && cur.Next.Equal(r.Next) {
			return cur, nil
		}
		ok, err := s.casTimer(ctx, r, rev)
		if err != nil {
			return TimerRecord{}, fmt.Errorf("store: update timer %s: %w", r.Timer, err)
		}
		if ok {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return TimerRecord{}, fmt.Errorf("store: update timer %s: %w", r.Timer, err)
		}
	}
}

// DeleteTimer deletes a timer's record (its last trigger is forgotten).
func (s *Store) DeleteTimer(ctx context.Context, name string) error {
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Delete(rctx, s.timerKey(name)); err != nil {
		return fmt.Errorf("store: delete timer %s: %w", name, err)
	}
	return nil
}

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
)

// CreateUnit stores u. An absent unit, or one with a different hash, is
// written (desired state from u, inactive if empty) and created is true; a
// unit with the same hash is left alone and created is false.
func (s *Store) CreateUnit(ctx context.Context, u fleet.Unit) (created bool, err error) {
	if u.Name == "" {
		return false, errors.New("store: create unit: empty name")
	}
	if u.DesiredState == "" {
		u.DesiredState = fleet.JobStateInactive
	}
	key := s.layout.Unit(u.Name)
	val := mustJSON(u)
	for {
		rctx, cancel := s.req(ctx)
		// Create if absent; otherwise read what is there, in the same txn.
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, val)).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		if err != nil {
			return false, fmt.Errorf("store: create unit %q: %w", u.Name, err)
		}
		if resp.Succeeded {
			return true, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted meanwhile
		}
		var old fleet.Unit
		if err := json.Unmarshal(kvs[0].Value, &old); err == nil && old.Hash == u.Hash {
			return false, nil
		}
		// Different hash (fleet's --replace): overwrite what we read.
		rctx, cancel = s.req(ctx)
		resp, err = s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, val)).
			Commit()
		cancel()
		if err != nil {
			return false, fmt.Errorf("store: create unit %q: %w", u.Name, err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("store: create unit %q: %w", u.Name, err)
		}
	}
}

// Unit returns one unit, or ErrNotFound.
func (s *Store) Unit(ctx context.Context, name string) (fleet.Unit, error) {
	u, _, err := s.getUnit(ctx, name)
	if err != nil {
		return fleet.Unit{}, fmt.Errorf("store: unit %q: %w", name, err)
	}
	return u, nil
}

func (s *Store) getUnit(ctx context.Context, name string) (fleet.Unit, int64, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Unit(name))
	if err != nil {
		return fleet.Unit{}, 0, err
	}
	if len(resp.Kvs) == 0 {
		return fleet.Unit{}, 0, ErrNotFound
	}
	var u fleet.Unit
	if err := json.Unmarshal(resp.Kvs[0].Value, &u); err != nil {
		return fleet.Unit{}, 0, fmt.Errorf("decode: %w", err)
	}
	u.Name = name
	return u, resp.Kvs[0].ModRevision, nil
}

// Units returns all units sorted by name.
func (s *Store) Units(ctx context.Context) ([]fleet.Unit, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.UnitsDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: units: %w", err)
	}
	us, err := s.decodeUnits(resp)
	if err != nil {
		return nil, fmt.Errorf("store: units: %w", err)
	}
	return us, nil
}

func (s *Store) decodeUnits(resp *clientv3.GetResponse) ([]fleet.Unit, error) {
	us := make([]fleet.Unit, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.layout.UnitsDir())
		var u fleet.Unit
		if err := json.Unmarshal(kv.Value, &u); err != nil {
			return nil, fmt.Errorf("decode %q: %w", name, err)
		}
		u.Name = name
		us = append(us, u)
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	return us, nil
}

// SetDesiredState changes a unit's desired state (compare-and-swap on the
// unit's revision, retried), or returns ErrNotFound.
func (s *Store) SetDesiredState(ctx context.Context, name string, st fleet.JobState) error {
	for {
		u, rev, err := s.getUnit(ctx, name)
		if err != nil {
			return fmt.Errorf("store: set desired state of %q: %w", name, err)
		}
		if u.DesiredState == st {
			return nil
		}
		u.DesiredState = st
		key := s.layout.Unit(name)
		rctx, cancel := s.req(ctx)
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, mustJSON(u))).
			Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("store: set desired state of %q: %w", name, err)
		}
		if resp.Succeeded {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: set desired state of %q: %w", name, err)
		}
	}
}

// DestroyUnit deletes units/<name> and reasons/<name> in one transaction, or
// returns ErrNotFound if the unit did not exist (its reason is deleted
// anyway). The leader unschedules it on its next pass.
func (s *Store) DestroyUnit(ctx context.Context, name string) error {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).
		Then(clientv3.OpDelete(s.layout.Unit(name)), clientv3.OpDelete(s.layout.Reason(name))).
		Commit()
	if err != nil {
		return fmt.Errorf("store: destroy unit %q: %w", name, err)
	}
	if resp.Responses[0].GetResponseDeleteRange().Deleted == 0 {
		return fmt.Errorf("store: destroy unit %q: %w", name, ErrNotFound)
	}
	return nil
}

// CreateUnits stores many new units in transactions of at most MaxTxnOps
// units; each transaction writes its units only if none of them exists yet
// (a desired state that is empty becomes inactive). A transaction that finds
// one of its units present falls back to CreateUnit for each of its units.
// It returns how many units were written.
func (s *Store) CreateUnits(ctx context.Context, us []fleet.Unit) (int, error) {
	created := 0
	for len(us) > 0 {
		chunk := us[:min(len(us), MaxTxnOps)]
		us = us[len(chunk):]
		cmps := make([]clientv3.Cmp, 0, len(chunk))
		ops := make([]clientv3.Op, 0, len(chunk))
		seen := make(map[string]bool, len(chunk))
		dup := false
		for _, u := range chunk {
			if u.Name == "" {
				return created, errors.New("store: create units: empty name")
			}
			if u.DesiredState == "" {
				u.DesiredState = fleet.JobStateInactive
			}
			key := s.layout.Unit(u.Name)
			dup = dup || seen[key]
			seen[key] = true
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, mustJSON(u)))
		}
		if !dup {
			rctx, cancel := s.req(ctx)
			resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
			cancel()
			if err != nil {
				return created, fmt.Errorf("store: create units: %w", err)
			}
			if resp.Succeeded {
				created += len(chunk)
				continue
			}
		}
		for _, u := range chunk {
			ok, err := s.CreateUnit(ctx, u)
			if err != nil {
				return created, err
			}
			if ok {
				created++
			}
		}
	}
	return created, nil
}

// UnitsByName reads the named units in read-only transactions of at most
// MaxTxnOps gets each; names that do not exist are missing from the map.
func (s *Store) UnitsByName(ctx context.Context, names []string) (map[string]fleet.Unit, error) {
	out := make(map[string]fleet.Unit, len(names))
	for len(names) > 0 {
		chunk := names[:min(len(names), MaxTxnOps)]
		names = names[len(chunk):]
		ops := make([]clientv3.Op, len(chunk))
		for i, n := range chunk {
			ops[i] = clientv3.OpGet(s.layout.Unit(n))
		}
		rctx, cancel := s.req(ctx)
		resp, err := s.cli.Txn(rctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store: units by name: %w", err)
		}
		for i, r := range resp.Responses {
			kvs := r.GetResponseRange().Kvs
			if len(kvs) == 0 {
				continue
			}
			var u fleet.Unit
			if err := json.Unmarshal(kvs[0].Value, &u); err != nil {
				return nil, fmt.Errorf("store: units by name: decode %q: %w", chunk[i], err)
			}
			u.Name = chunk[i]
			out[u.Name] = u
		}
	}
	return out, nil
}

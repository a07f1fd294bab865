package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// MaxRevisions is how many files of one unit or template the cluster keeps
// (revisions/<unit>/): the newest by revision number.
const MaxRevisions = 10

var (
	// ErrRolloutActive is returned (wrapped, with the running rollout
	// named) by StartRollout when the unit has a rollout that is not over.
	ErrRolloutActive = errors.New("a rollout of this unit is in progress")
	// ErrConflict is returned (wrapped) by a compare-and-swap write whose
	// record changed since it was read.
	ErrConflict = errors.New("changed concurrently; read it again")
)

// Revision is one stored file of a unit or template: revisions/<unit>/<hash>.
// Template instances share their template's revisions (RevisionOwner).
type Revision struct {
	Unit     string             `json:"unit"`
	Revision int                `json:"revision"`
	Hash     string             `json:"hash"`
	Options  []fleet.UnitOption `json:"options"`
	Time     time.Time          `json:"time"`
	User     string             `json:"user,omitempty"`
}

// RevisionOwner is the name whose revisions hold name's files: the
// template for an instance (web@1.service -> web@.service), else name.
func RevisionOwner(name string) string {
	if n := unitfile.ParseName(name); n.IsInstance {
		return n.TemplateName()
	}
	return name
}

// Revisions returns owner's stored files, oldest first.
func (s *Store) Revisions(ctx context.Context, owner string) ([]Revision, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.UnitRevisionsDir(owner), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: revisions of %q: %w", owner, err)
	}
	out := make([]Revision, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r Revision
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("store: revisions of %q: decode %s: %w", owner, kv.Key, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

// RevisionByHash returns owner's file with hash; ok is false if it is not
// kept.
func (s *Store) RevisionByHash(ctx context.Context, owner, hash string) (Revision, bool, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Revision(owner, hash))
	if err != nil {
		return Revision{}, false, fmt.Errorf("store: revision %s of %q: %w", hash, owner, err)
	}
	if len(resp.Kvs) == 0 {
		return Revision{}, false, nil
	}
	var r Revision
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return Revision{}, false, fmt.Errorf("store: revision %s of %q: %w", hash, owner, err)
	}
	return r, true, nil
}

// NextRevision returns the revision owner's next new file gets: 1 + the
// highest kept, given owner's current revisions.
func NextRevision(revs []Revision) int {
	n := 0
	for _, r := range revs {
		n = max(n, r.Revision)
	}
	return n + 1
}

// RecordRevision keeps u's file as owner's newest revision, unless it is
// the newest already. A file kept under an older number is renumbered
// (a rollback makes the old file the newest, as Kubernetes does). Revisions
// beyond MaxRevisions are dropped, oldest first.
func (s *Store) RecordRevision(ctx context.Context, owner string, u fleet.Unit, user string, now time.Time) (Revision, error) {
	revs, err := s.Revisions(ctx, owner)
	if err != nil {
		return Revision{}, err
	}
	if n := len(revs); n > 0 && revs[n-1].Hash == u.Hash {
		return revs[n-1], nil
	}
	rev := Revision{Unit: owner, Revision: NextRevision(revs), Hash: u.Hash, Options: u.Options, Time: now.UTC(), User: user}
	rctx, cancel := s.req(ctx)
	_, err = s.cli.Put(rctx, s.layout.Revision(owner, u.Hash), mustJSON(rev))
	cancel()
	if err != nil {
		return Revision{}, fmt.Errorf("store: record revision of %q: %w", owner, err)
	}
	s.pruneRevisions(ctx, owner, append(revs, rev), nil)
	return rev, nil
}

// pruneRevisions drops the oldest of revs beyond MaxRevisions, except the
// hashes in keep. Failures are left for the next prune.
func (s *Store) pruneRevisions(ctx context.Context, owner string, revs []Revision, keep map[string]bool) {
	byHash := map[string]Revision{}
	for _, r := range revs {
		if old, ok := byHash[r.Hash]; !ok || r.Revision > old.Revision {
			byHash[r.Hash] = r
		}
	}
	uniq := make([]Revision, 0, len(byHash))
	for _, r := range byHash {
		uniq = append(uniq, r)
	}
	sort.Slice(uniq, func(i, j int) bool { return uniq[i].Revision > uniq[j].Revision })
	for i, r := range uniq {
		if i < MaxRevisions || keep[r.Hash] {
			continue
		}
		rctx, cancel := s.req(ctx)
		_, _ = s.cli.Delete(rctx, s.layout.Revision(owner, r.Hash))
		cancel()
	}
}

// RolloutRecord is a stored rollout and the revision its key was read at
// (for compare-and-swap writes).
type RolloutRecord struct {
	Rollout rollout.Rollout
	ModRev  int64
}

// Rollout returns the rollout record of unit, or ErrNotFound.
func (s *Store) Rollout(ctx context.Context, unit string) (RolloutRecord, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Rollout(unit))
	if err != nil {
		return RolloutRecord{}, fmt.Errorf("store: rollout of %q: %w", unit, err)
	}
	if len(resp.Kvs) == 0 {
		return RolloutRecord{}, fmt.Errorf("store: rollout of %q: %w", unit, ErrNotFound)
	}
	var r rollout.Rollout
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return RolloutRecord{}, fmt.Errorf("store: rollout of %q: %w", unit, err)
	}
	return RolloutRecord{Rollout: r, ModRev: resp.Kvs[0].ModRevision}, nil
}

// Rollouts returns every rollout record (running and finished), sorted by
// unit.
func (s *Store) Rollouts(ctx context.Context) ([]RolloutRecord, error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.RolloutsDir(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: rollouts: %w", err)
	}
	out := make([]RolloutRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r rollout.Rollout
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("store: rollouts: decode %s: %w", kv.Key, err)
		}
		out = append(out, RolloutRecord{Rollout: r, ModRev: kv.ModRevision})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rollout.Unit < out[j].Rollout.Unit })
	return out, nil
}

// StartRollout stores a new rollout record together with the rolled unit's
// new file (file, replacing what was read at fileModRev; fileModRev 0 skips
// that check) and its revision, in one transaction: all or nothing. It
// fails with ErrRolloutActive (wrapped, naming it) when the unit has a
// rollout that is not over, and with ErrConflict when the unit's file or
// the previous record changed meanwhile. Revisions beyond MaxRevisions are
// dropped afterwards, never those the rollout moves between. fileModRev is
// that of units/<r.Unit>; a file with an empty Name is not written (a plain
// unit's file is rewritten by the driver, as its only target).
func (s *Store) StartRollout(ctx context.Context, r rollout.Rollout, file fleet.Unit, fileModRev int64, rev Revision) error {
	unit := r.Unit
	prev, err := s.Rollout(ctx, unit)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	rkey := s.layout.Rollout(unit)
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(rkey), "=", 0)}
	if err == nil {
		if !prev.Rollout.Phase.Terminal() {
			return fmt.Errorf("store: start rollout of %q: %w: revision %d (%s), %s",
				unit, ErrRolloutActive, prev.Rollout.ToRevision, short(prev.Rollout.ToHash), prev.Rollout.Phase)
		}
		conds = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(rkey), "=", prev.ModRev)}
	}
	if fileModRev > 0 {
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(s.layout.Unit(unit)), "=", fileModRev))
	}
	ops := []clientv3.Op{clientv3.OpPut(rkey, mustJSON(r))}
	if file.Name != "" { // a plain unit's file is rewritten by the driver, as its only target
		ops = append(ops, clientv3.OpPut(s.layout.Unit(file.Name), mustJSON(file)))
	}
	owner := RevisionOwner(unit)
	if rev.Hash != "" {
		ops = append(ops, clientv3.OpPut(s.layout.Revision(owner, rev.Hash), mustJSON(rev)))
	}
	rctx, cancel := s.req(ctx)
	resp, err := s.cli.Txn(rctx).If(conds...).Then(ops...).Commit()
	cancel()
	if err != nil {
		return fmt.Errorf("store: start rollout of %q: %w", unit, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("store: start rollout of %q: %w", unit, ErrConflict)
	}
	if revs, err := s.Revisions(ctx, owner); err == nil {
		s.pruneRevisions(ctx, owner, revs, map[string]bool{r.FromHash: true, r.ToHash: true})
	}
	return nil
}

// UpdateRollout writes rec.Rollout if its key is still at rec.ModRev
// (ErrConflict otherwise) and returns the new mod revision. The API uses it
// to pause, resume and abort.
func (s *Store) UpdateRollout(ctx context.Context, rec RolloutRecord) (int64, error) {
	key := s.layout.Rollout(rec.Rollout.Unit)
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rec.ModRev)).
		Then(clientv3.OpPut(key, mustJSON(rec.Rollout))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("store: update rollout of %q: %w", rec.Rollout.Unit, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("store: update rollout of %q: %w", rec.Rollout.Unit, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// ApplyRollout is the engine leader's write of one rollout step: the record
// (if its key is still at rec.ModRev) and the unit files the step rewrites,
// in one transaction fenced by the leadership. It returns the new mod
// revision, or ErrNotLeader / ErrConflict (wrapped) and writes nothing.
func (s *Store) ApplyRollout(ctx context.Context, l *Leadership, rec RolloutRecord, units []UnitWrite) (int64, error) {
	if l == nil {
		return 0, fmt.Errorf("store: apply rollout: no leadership: %w", ErrNotLeader)
	}
	key := s.layout.Rollout(rec.Rollout.Unit)
	ops := []clientv3.Op{clientv3.OpPut(key, mustJSON(rec.Rollout))}
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rec.ModRev)}
	for _, w := range units {
		ukey := s.layout.Unit(w.Unit.Name)
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(ukey), "=", w.ModRev))
		ops = append(ops, clientv3.OpPut(ukey, mustJSON(w.Unit)))
	}
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(l.Key), "=", l.Rev)).
		Then(clientv3.OpTxn(conds, ops, nil)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("store: apply rollout of %q: %w", rec.Rollout.Unit, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("store: apply rollout of %q as %s: %w", rec.Rollout.Unit, l.MachineID, ErrNotLeader)
	}
	if !resp.Responses[0].GetResponseTxn().Succeeded {
		return 0, fmt.Errorf("store: apply rollout of %q: %w", rec.Rollout.Unit, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// UnitWrite is a unit file ApplyRollout rewrites, only if units/<Name> is
// still at ModRev (the mod revision it was read at).
type UnitWrite struct {
	Unit   fleet.Unit
	ModRev int64
}

// UnitRev returns one unit and the mod revision it was read at, or
// ErrNotFound.
func (s *Store) UnitRev(ctx context.Context, name string) (fleet.Unit, int64, error) {
	u, rev, err := s.getUnit(ctx, name)
	if err != nil {
		return fleet.Unit{}, 0, fmt.Errorf("store: unit %q: %w", name, err)
	}
	return u, rev, nil
}

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// PutCheck records, on the machine's lease, that a health check of unit
// on machine fails with msg (checks/<machine>/<unit>): the rollout driver
// names it when an instance does not become healthy.
func (s *Store) PutCheck(ctx context.Context, lease etcdkv.LeaseID, machine, unit, msg string) error {
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Put(rctx, s.layout.Check(machine, unit), msg, clientv3.WithLease(clientv3.LeaseID(lease))); err != nil {
		return fmt.Errorf("store: record check of %s on %s: %w", unit, machine, err)
	}
	return nil
}

// DeleteCheck forgets a failing check of unit on machine (it passes now).
func (s *Store) DeleteCheck(ctx context.Context, machine, unit string) error {
	rctx, cancel := s.req(ctx)
	defer cancel()
	if _, err := s.cli.Delete(rctx, s.layout.Check(machine, unit)); err != nil {
		return fmt.Errorf("store: forget check of %s on %s: %w", unit, machine, err)
	}
	return nil
}

// Check returns the last failing health check of unit on machine; ok is
// false when none is recorded.
func (s *Store) Check(ctx context.Context, machine, unit string) (msg string, ok bool, err error) {
	rctx, cancel := s.req(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.layout.Check(machine, unit))
	if err != nil {
		return "", false, fmt.Errorf("store: check of %s on %s: %w", unit, machine, err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	return string(resp.Kvs[0].Value), true, nil
}

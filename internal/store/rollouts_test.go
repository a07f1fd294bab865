package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
)

func TestRevisionOwner(t *testing.T) {
	for name, want := range map[string]string{
		"web@1.service": "web@.service",
		"web@.service":  "web@.service",
		"db.service":    "db.service",
	} {
		if got := store.RevisionOwner(name); got != want {
			t.Errorf("RevisionOwner(%q) = %q, want %q", name, got, want)
		}
	}
}

// Revisions are numbered in order, a file already newest is not recorded
// twice, an older file recorded again becomes the newest, and only the
// newest MaxRevisions are kept.
func TestRecordRevision(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	rec := func(hash string) store.Revision {
		t.Helper()
		r, err := s.RecordRevision(ctx, "web@.service", unit("web@.service", hash), "admin", now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rec("h1"); r.Revision != 1 || r.User != "admin" || len(r.Options) != 1 {
		t.Fatalf("first revision %+v", r)
	}
	if r := rec("h1"); r.Revision != 1 {
		t.Errorf("same file again: revision %d, want 1", r.Revision)
	}
	if r := rec("h2"); r.Revision != 2 {
		t.Errorf("second file: revision %d, want 2", r.Revision)
	}
	if r := rec("h1"); r.Revision != 3 {
		t.Errorf("rollback to the first file: revision %d, want 3", r.Revision)
	}
	for i := 3; i <= 12; i++ {
		rec(fmt.Sprintf("h%d", i))
	}
	revs, err := s.Revisions(ctx, "web@.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != store.MaxRevisions || revs[0].Hash != "h3" || revs[len(revs)-1].Hash != "h12" {
		t.Errorf("kept %d revisions from %s to %s, want %d from h3 to h12", len(revs), revs[0].Hash, revs[len(revs)-1].Hash, store.MaxRevisions)
	}
	if _, ok, err := s.RevisionByHash(ctx, "web@.service", "h2"); ok || err != nil {
		t.Errorf("h2 should be pruned: ok %v err %v", ok, err)
	}
	if r, ok, err := s.RevisionByHash(ctx, "web@.service", "h12"); !ok || err != nil || r.Revision != store.NextRevision(revs)-1 {
		t.Errorf("h12: %+v %v %v", r, ok, err)
	}
}

func newRollout(t *testing.T, unit, from, to string) rollout.Rollout {
	t.Helper()
	r, err := rollout.New(rollout.Spec{Unit: unit, FromHash: from, FromRevision: 1, ToHash: to, ToRevision: 2,
		MaxParallel: 1, MinHealthyTime: time.Second, HealthyDeadline: time.Minute}, []string{"web@1.service"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// StartRollout writes the record, the new file and its revision together;
// a second one while the first runs is refused and writes nothing; a
// changed file is a conflict.
func TestStartRollout(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	if _, err := s.CreateUnit(ctx, unit("web@.service", "h1")); err != nil {
		t.Fatal(err)
	}
	kv, _, _, err := s.KV().Get(ctx, s.Layout().Unit("web@.service"))
	if err != nil {
		t.Fatal(err)
	}
	r := newRollout(t, "web@.service", "h1", "h2")
	newFile := unit("web@.service", "h2")
	if err := s.StartRollout(ctx, r, newFile, kv.ModRev, store.Revision{Unit: "web@.service", Revision: 2, Hash: "h2", Options: newFile.Options}); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Unit(ctx, "web@.service"); u.Hash != "h2" {
		t.Errorf("file hash %s after start, want h2", u.Hash)
	}
	if _, ok, _ := s.RevisionByHash(ctx, "web@.service", "h2"); !ok {
		t.Error("revision h2 not stored")
	}
	got, err := s.Rollout(ctx, "web@.service")
	if err != nil || got.Rollout.ToHash != "h2" || got.Rollout.Phase != rollout.PhaseRunning {
		t.Fatalf("record %+v %v", got, err)
	}

	// A second rollout while this one runs.
	r3 := newRollout(t, "web@.service", "h2", "h3")
	err = s.StartRollout(ctx, r3, unit("web@.service", "h3"), 0, store.Revision{Unit: "web@.service", Revision: 3, Hash: "h3"})
	if !errors.Is(err, store.ErrRolloutActive) {
		t.Fatalf("second rollout: %v, want ErrRolloutActive", err)
	}
	if u, _ := s.Unit(ctx, "web@.service"); u.Hash != "h2" {
		t.Errorf("refused rollout changed the file to %s", u.Hash)
	}

	// Once the first is over, a file changed since it was read is a conflict.
	got.Rollout.Phase = rollout.PhaseDone
	if _, err := s.UpdateRollout(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRollout(ctx, got); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	err = s.StartRollout(ctx, r3, unit("web@.service", "h3"), kv.ModRev, store.Revision{Unit: "web@.service", Revision: 3, Hash: "h3"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("rollout over a changed file: %v, want ErrConflict", err)
	}
	if _, ok, _ := s.RevisionByHash(ctx, "web@.service", "h3"); ok {
		t.Error("refused rollout stored its revision")
	}
}

// ApplyRollout is fenced by the leadership and compared on the record.
func TestApplyRolloutFenced(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	if _, err := s.CreateUnit(ctx, unit("web@1.service", "h1")); err != nil {
		t.Fatal(err)
	}
	r := newRollout(t, "web@.service", "h1", "h2")
	if err := s.StartRollout(ctx, r, unit("web@.service", "h2"), 0, store.Revision{}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Rollout(ctx, "web@.service")
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Campaign(ctx, "m1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	next := rec
	next.Rollout.Batches = 1
	inst := unit("web@1.service", "h2")
	inst.DesiredState = fleet.JobStateLaunched
	_, instRev, err := s.UnitRev(ctx, "web@1.service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyRollout(ctx, l, next, []store.UnitWrite{{Unit: inst, ModRev: instRev}}); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Unit(ctx, "web@1.service"); u.Hash != "h2" {
		t.Errorf("instance hash %s, want h2", u.Hash)
	}
	// The same (now stale) record again: conflict, nothing written.
	inst.Hash = "h9"
	if _, err := s.ApplyRollout(ctx, l, next, []store.UnitWrite{{Unit: inst, ModRev: instRev}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale apply: %v, want ErrConflict", err)
	}
	// A deposed leader writes nothing.
	cur, _ := s.Rollout(ctx, "web@.service")
	if err := l.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	_, instRev, _ = s.UnitRev(ctx, "web@1.service")
	if _, err := s.ApplyRollout(ctx, l, cur, []store.UnitWrite{{Unit: inst, ModRev: instRev}}); !errors.Is(err, store.ErrNotLeader) {
		t.Errorf("deposed apply: %v, want ErrNotLeader", err)
	}
	if u, _ := s.Unit(ctx, "web@1.service"); u.Hash != "h2" {
		t.Errorf("instance hash %s after refused writes, want h2", u.Hash)
	}
}

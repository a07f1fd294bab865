package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/rollout"
)

const (
	dbV1 = "[Service]\nExecStart=/bin/db v1\n"
	dbV2 = "[Service]\nExecStart=/bin/db v2\n"
)

// applyCluster has web@.service (two launched instances), db.service
// (loaded), same.service and old.service; the directory has web v2, db v2,
// same.service unchanged, new.service, and files apply ignores.
func applyCluster(t *testing.T) (*rolloutCluster, string) {
	rc := newRolloutCluster(t)
	rc.submit("web@.service", webV1, "inactive")
	rc.submit("web@1.service", webV1, "launched")
	rc.submit("web@2.service", webV1, "launched")
	rc.submit("db.service", dbV1, "loaded")
	rc.submit("same.service", "[Service]\nExecStart=/bin/same\n", "inactive")
	rc.submit("old.service", "[Service]\nExecStart=/bin/old\n", "inactive")
	dir := t.TempDir()
	writeFile(t, dir, "web@.service", webV2)
	writeFile(t, dir, "db.service", dbV2)
	writeFile(t, dir, "same.service", "# unchanged, formatted differently\n[Service]\nExecStart=/bin/same\n")
	writeFile(t, dir, "new.service", "[Service]\nExecStart=/bin/new\n")
	writeFile(t, dir, "README.md", "not a unit\n")
	if err := os.Mkdir(filepath.Join(dir, "sub.service"), 0o755); err != nil {
		t.Fatal(err)
	}
	return rc, dir
}

func TestApplyDryRunThenApplyTwice(t *testing.T) {
	rc, dir := applyCluster(t)
	plan := "replace db.service\n" +
		"create new.service\n" +
		"unchanged same.service\n" +
		"rollout web@.service (2 instances)\n" +
		"destroy old.service\n" +
		"apply: 1 to create, 1 to roll out, 1 to replace, 1 to destroy, 1 unchanged\n"
	before := rc.etcdRev()
	wantResult(t, rc.run("apply", "--dry-run", "--prune", dir), 0, plan, "")
	if after := rc.etcdRev(); after != before {
		t.Fatalf("--dry-run wrote to etcd (revision %d -> %d)", before, after)
	}
	// Without --prune nothing is destroyed.
	r := rc.run("apply", "--dry-run", dir)
	if r.code != 0 || strings.Contains(r.stdout, "destroy old") || !strings.HasSuffix(r.stdout, "apply: 1 to create, 1 to roll out, 1 to replace, 0 to destroy, 1 unchanged\n") {
		t.Errorf("dry run without --prune: %+v", r)
	}

	h2 := hashText(t, webV2)
	r = rc.run("apply", "--prune", "--no-block", dir)
	wantResult(t, r, 0, plan+
		"Replaced db.service\n"+
		"Created new.service\n"+
		"Rollout of web@.service to revision 2 ("+h2[:7]+") started: 2 instances\n"+
		"Destroyed old.service\n", "")
	ctx := context.Background()
	if db, err := rc.st.Unit(ctx, "db.service"); err != nil || db.Hash != hashText(t, dbV2) || db.DesiredState != fleet.JobStateLoaded {
		t.Errorf("db.service after apply: %+v %v", db, err)
	}
	if _, err := rc.st.Unit(ctx, "new.service"); err != nil {
		t.Errorf("new.service: %v", err)
	}
	if _, err := rc.st.Unit(ctx, "old.service"); err == nil {
		t.Errorf("old.service not destroyed")
	}
	if rec, err := rc.st.Rollout(ctx, "web@.service"); err != nil || rec.Rollout.Phase != rollout.PhaseRunning {
		t.Errorf("web rollout: %+v %v", rec, err)
	}
	for _, n := range []string{"web@1.service", "web@2.service"} {
		if _, err := rc.st.Unit(ctx, n); err != nil {
			t.Errorf("%s pruned: %v", n, err)
		}
	}

	// The second time: all unchanged, nothing written.
	before = rc.etcdRev()
	wantResult(t, rc.run("apply", "--prune", dir), 0,
		"unchanged db.service\nunchanged new.service\nunchanged same.service\nunchanged web@.service\n"+
			"apply: 0 to create, 0 to roll out, 0 to replace, 0 to destroy, 4 unchanged\n", "")
	if after := rc.etcdRev(); after != before {
		t.Errorf("second apply wrote to etcd (revision %d -> %d)", before, after)
	}
}

func TestApplyBlockingRollout(t *testing.T) {
	rc, _ := applyCluster(t)
	rc.drive("web@.service", false)
	file := writeFile(t, t.TempDir(), "web@.service", webV2)
	r := rc.run("apply", "--min-healthy-time", "10ms", "--max-parallel", "2", file)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "rollout web@.service (2 instances)\napply: 0 to create, 1 to roll out,") ||
		!strings.HasSuffix(r.stdout, "web@.service: done: 2/2 updated\n") {
		t.Fatalf("apply: %+v", r)
	}
}

func TestApplyBadInput(t *testing.T) {
	rc, dir := applyCluster(t)
	before := rc.etcdRev()
	empty := t.TempDir()
	writeFile(t, empty, "notes.txt", "x")
	other := t.TempDir()
	writeFile(t, other, "db.service", dbV1)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"apply"}, "One directory or unit file must be provided\n"},
		{[]string{"apply", "--max-surge", "-2", dir}, "Error: --max-surge must not be negative\n"},
		{[]string{"apply", "--max-parallel", "0", dir}, "Error: --max-parallel must be at least 1\n"},
		{[]string{"apply", empty}, "Error: no unit files in directory " + empty + "\n"},
		{[]string{"apply", filepath.Join(empty, "gone.service")}, "Error: unable to find unit file " + filepath.Join(empty, "gone.service") + "\n"},
		{[]string{"apply", dir, other}, "Error: unit db.service is given twice: " + filepath.Join(dir, "db.service") + " and " + filepath.Join(other, "db.service") + "\n"},
	} {
		r := rc.run(tc.args...)
		if r.code != 1 || r.stderr != tc.stderr || r.stdout != "" {
			t.Errorf("%v: %+v\nwant stderr %q", tc.args, r, tc.stderr)
		}
	}
	if after := rc.etcdRev(); after != before {
		t.Errorf("bad input wrote to etcd (revision %d -> %d)", before, after)
	}
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/api"
	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/rollout"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
	"github.com/fleetd/fleet/internal/unitfile"
)

// rolloutCluster is a real API on a real etcd, with a stand-in for the
// engine leader's rollout driver.
type rolloutCluster struct {
	t   *testing.T
	url string
	st  *store.Store
	api *client.Client
}

func newRolloutCluster(t *testing.T) *rolloutCluster {
	t.Helper()
	st := store.New(etcdkv.New(etcdtest.New(t)), "/fleet-cli-rollout/")
	srv := httptest.NewServer(api.New(api.Config{Store: st, MachineID: m1}).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.Options{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &rolloutCluster{t: t, url: srv.URL, st: st, api: c}
}

func (rc *rolloutCluster) run(args ...string) result {
	rc.t.Helper()
	return runCLI(rc.t, context.Background(), []string{"FLEETCTL_ENDPOINT=" + rc.url}, args...)
}

func (rc *rolloutCluster) runCtx(ctx context.Context, args ...string) result {
	rc.t.Helper()
	return runCLI(rc.t, ctx, []string{"FLEETCTL_ENDPOINT=" + rc.url}, args...)
}

// submit creates (or replaces) a unit from file text with a desired state,
// through the API (which records its revision).
func (rc *rolloutCluster) submit(name, text, desired string) {
	rc.t.Helper()
	opts, err := unitfile.Parse([]byte(text))
	if err != nil {
		rc.t.Fatal(err)
	}
	u := &client.Unit{Name: name, Options: client.FromFleetOptions(opts), DesiredState: desired}
	if err := rc.api.CreateUnit(context.Background(), u); err != nil {
		rc.t.Fatalf("submit %s: %v", name, err)
	}
}

func (rc *rolloutCluster) hash(name string) string {
	rc.t.Helper()
	u, err := rc.st.Unit(context.Background(), name)
	if err != nil {
		return ""
	}
	return u.Hash
}

// etcdRev is the store's current etcd revision: unchanged means nothing
// was written.
func (rc *rolloutCluster) etcdRev() int64 {
	rc.t.Helper()
	_, _, rev, err := rc.st.KV().Get(context.Background(), "/nothing")
	if err != nil {
		rc.t.Fatal(err)
	}
	return rev
}

// drive steps unit's rollout as the engine leader would, with every
// target healthy on the revision it moves to, except (fail) on the new
// one, where it has failed; it returns when the rollout is over or the
// test ends.
func (rc *rolloutCluster) drive(unit string, fail bool) (wait func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(3 * time.Millisecond)
			rec, err := rc.st.Rollout(ctx, unit)
			if err != nil {
				continue
			}
			if rec.Rollout.Phase.Terminal() {
				return
			}
			obs := map[string]rollout.Observation{}
			for _, tg := range rec.Rollout.Targets {
				o := rollout.Observation{Present: true, Hash: rec.Rollout.FromHash, ActiveState: "active", SubState: "running", ChecksPassing: true}
				switch tg.Status {
				case rollout.TargetUpdating, rollout.TargetUpdated, rollout.TargetFailed:
					o.Hash = rec.Rollout.ToHash
					if fail {
						o.ActiveState, o.SubState, o.Detail = "failed", "failed", "exit status 3"
					}
				}
				obs[tg.Name] = o
			}
			next, _, _ := rollout.Step(rec.Rollout, obs, time.Now().UTC())
			rec.Rollout = next
			if _, err := rc.st.UpdateRollout(ctx, rec); err != nil && !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
				rc.t.Errorf("driver: %v", err)
				return
			}
		}
	}()
	stop := func() { cancel(); wg.Wait() }
	rc.t.Cleanup(stop)
	return func() { wg.Wait() }
}

const (
	webV1 = "[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/bin/web v1\n"
	webV2 = "# version 2\n[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/bin/web v2\n"
)

func hashText(t *testing.T, text string) string {
	t.Helper()
	opts, err := unitfile.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return unitfile.Hash(opts)
}

// webCluster has web@.service (v1) with three launched instances and a
// local v2 file; it returns the cluster and the file's path.
func webCluster(t *testing.T) (*rolloutCluster, string) {
	rc := newRolloutCluster(t)
	rc.submit("web@.service", webV1, "inactive")
	for _, n := range []string{"web@1.service", "web@2.service", "web@3.service"} {
		rc.submit(n, webV1, "launched")
	}
	return rc, writeFile(t, t.TempDir(), "web@.service", webV2)
}

func TestRolloutBlockingDone(t *testing.T) {
	rc, path := webCluster(t)
	rc.drive("web@.service", false)
	r := rc.run("rollout", "--max-parallel", "2", "--min-healthy-time", "20ms", "--healthy-deadline", "10s", path)
	h2 := hashText(t, webV2)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || r.stderr != "" || len(lines) < 3 {
		t.Fatalf("rollout: %+v", r)
	}
	if lines[0] != "Rollout of web@.service to revision 2 ("+h2[:7]+") started: 3 instances" ||
		lines[1] != "web@.service: 0/3 updated, starting next batch" ||
		lines[len(lines)-1] != "web@.service: done: 3/3 updated" {
		t.Errorf("output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "web@.service: 0/3 updated, 2 in progress, ") {
		t.Errorf("no batch progress line:\n%s", r.stdout)
	}
	// Same file again: nothing to roll, exit 1.
	r = rc.run("rollout", path)
	wantResult(t, r, 1, "", "Error rolling out web@.service: nothing to roll: web@.service is already at revision 2 ("+h2[:7]+")\n")

	// history, with the current revision marked.
	revs, _ := rc.st.Revisions(context.Background(), "web@.service")
	h1 := hashText(t, webV1)
	want := "REVISION\tHASH\tTIME\t\t\tUSER\n" +
		"1\t\t" + h1[:7] + "\t" + formatTime(revs[0].Time) + "\tlocal\n" +
		"2*\t\t" + h2[:7] + "\t" + formatTime(revs[1].Time) + "\tlocal\n"
	wantResult(t, rc.run("history", "web@.service"), 0, want, "")
	r = rc.run("history", "--no-legend", "--full", "web@2.service")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "1*\t"+h1+"\t") || strings.Count(r.stdout, "*") != 1 {
		t.Errorf("instance history (still at v1: this fake driver does not rewrite instances): %+v", r)
	}
	r = rc.run("history", "-o", "json", "web@.service")
	var js []client.Revision
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || len(js) != 2 || !js[1].Current || js[0].Hash != h1 {
		t.Errorf("history json: %+v %v", r, err)
	}
	wantResult(t, rc.run("history", "nope.service"), 1, "",
		"Error retrieving the history of nope.service: unit nope.service does not exist and has no revisions\n")

	// undo, not blocking.
	r = rc.run("rollout", "undo", "--no-block", "web@.service")
	wantResult(t, r, 0, "Undo of web@.service to revision 3 ("+h1[:7]+") started: 3 instances\n", "")
	if rc.hash("web@.service") != h1 {
		t.Errorf("undo did not put the template back")
	}
	wantResult(t, rc.run("rollout", "undo", "--to-revision", "9", "web@.service"), 1, "",
		"Error rolling out web@.service: web@.service has no revision 9 (kept: 2, 3)\n")
}

func TestRolloutNoBlockStatusAndControl(t *testing.T) {
	rc, path := webCluster(t)
	h1, h2 := hashText(t, webV1), hashText(t, webV2)
	r := rc.run("rollout", "--no-block", path)
	wantResult(t, r, 0, "Rollout of web@.service to revision 2 ("+h2[:7]+") started: 3 instances\n", "")

	rec, err := rc.st.Rollout(context.Background(), "web@.service")
	if err != nil {
		t.Fatal(err)
	}
	created := formatTime(rec.Rollout.Created)
	want := "Rollout of web@.service: running\n" +
		"Revisions:\t1 (" + h1[:7] + ") -> 2 (" + h2[:7] + ")\n" +
		"Gates:\t\tmax-parallel 1, min-healthy-time 10s, healthy-deadline 5m0s, auto-revert false\n" +
		"Started:\t" + created + " by local\n" +
		"Progress:\t0/3 updated, starting next batch\n" +
		"\n" +
		"NAME\t\tSTATUS\tSINCE\tMESSAGE\n" +
		"web@1.service\tpending\t-\t-\n" +
		"web@2.service\tpending\t-\t-\n" +
		"web@3.service\tpending\t-\t-\n"
	wantResult(t, rc.run("rollout", "status", "web@.service"), 0, want, "")
	r = rc.run("rollout", "status", "-o", "json", "web@.service")
	var js client.Rollout
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || js.Unit != "web@.service" || js.Progress == "" || len(js.Targets) != 3 {
		t.Errorf("status json: %+v %v", r, err)
	}
	wantResult(t, rc.run("rollout", "status", "db.service"), 1, "", "Error retrieving the rollout of db.service: no rollout of db.service\n")

	// A second rollout while it runs: 409 naming it.
	r = rc.run("rollout", path)
	if r.code != 1 || !strings.Contains(r.stderr, "a rollout of web@.service is in progress: revision 2") {
		t.Errorf("second rollout: %+v", r)
	}
	wantResult(t, rc.run("rollout", "pause", "web@.service"), 0, "Rollout of web@.service paused: paused: 0/3 updated\n", "")
	wantResult(t, rc.run("rollout", "pause", "web@.service"), 1, "",
		"Error: cannot pause the rollout of web@.service: rollout of web@.service is already paused\n")
	wantResult(t, rc.run("rollout", "resume", "web@.service"), 0, "Rollout of web@.service running: 0/3 updated, starting next batch\n", "")
	wantResult(t, rc.run("rollout", "abort", "web@.service"), 0, "Rollout of web@.service aborted: aborted: aborted by local (0/3 updated)\n", "")
	wantResult(t, rc.run("rollout", "abort", "web@.service"), 1, "",
		"Error: cannot abort the rollout of web@.service: rollout of web@.service is aborted; nothing to abort\n")
}

func TestRolloutFailsAndReverts(t *testing.T) {
	rc, path := webCluster(t)
	rc.drive("web@.service", true)
	r := rc.run("rollout", "--auto-revert", "--min-healthy-time", "10ms", "--healthy-deadline", "10s", path)
	if r.code != 1 || !strings.Contains(r.stderr, "Rollout of web@.service reverted: ") ||
		!strings.Contains(r.stderr, "web@1.service") || !strings.Contains(r.stderr, "exit status 3") {
		t.Fatalf("failing rollout: %+v", r)
	}
	if !strings.Contains(r.stdout, "web@.service: reverted: ") {
		t.Errorf("no final progress line: %q", r.stdout)
	}
}

func TestRolloutInterrupted(t *testing.T) {
	rc, path := webCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := rc.runCtx(ctx, "rollout", path)
	if r.code != exitInterrupted || r.stderr != "Interrupted: the rollout goes on; follow it with: fleetctl rollout status web@.service\n" {
		t.Fatalf("interrupted: %+v", r)
	}
	if rec, err := rc.st.Rollout(context.Background(), "web@.service"); err != nil || rec.Rollout.Phase != rollout.PhaseRunning {
		t.Errorf("rollout after the interrupt: %+v %v", rec, err)
	}
}

func TestRolloutBadInput(t *testing.T) {
	rc, path := webCluster(t)
	missing := filepath.Join(t.TempDir(), "nope.service")
	before := rc.etcdRev()
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"rollout", "--max-surge", "-1", path}, "Error: --max-surge must not be negative\n"},
		{[]string{"rollout", "--max-parallel", "0", path}, "Error: --max-parallel must be at least 1\n"},
		{[]string{"rollout", "undo", "--max-parallel", "0", "web@.service"}, "Error: --max-parallel must be at least 1\n"},
		{[]string{"rollout", missing}, "Unable to find unit file " + missing + "\n"},
		{[]string{"rollout"}, "One unit file must be provided\n"},
		{[]string{"rollout", "--healthy-deadline", "1s", path}, "Error rolling out web@.service: healthyDeadline (1s) must be at least minHealthyTime (10s)\n"},
		{[]string{"rollout", writeFile(t, t.TempDir(), "nope.service", "[Service]\nExecStart=/bin/true\n")},
			"Error rolling out nope.service: unit nope.service does not exist\n"},
		{[]string{"rollout", writeFile(t, t.TempDir(), "web@.service", "[Service]\nExecStart=/bin/x\n[X-Fleet]\nGlobal=true\nMachineID=abc\n")},
			"Error rolling out web@.service: MachineID cannot be used with Global\n"},
	} {
		r := rc.run(tc.args...)
		if r.code != 1 || r.stderr != tc.stderr {
			t.Errorf("%v: %+v\nwant stderr %q", tc.args, r, tc.stderr)
		}
	}
	if after := rc.etcdRev(); after != before {
		t.Errorf("bad input wrote to etcd (revision %d -> %d)", before, after)
	}

	// A template without launched instances: the file is updated, exit 1.
	rc2 := newRolloutCluster(t)
	rc2.submit("web@.service", webV1, "inactive")
	rc2.submit("web@1.service", webV1, "loaded")
	h2 := hashText(t, webV2)
	wantResult(t, rc2.run("rollout", path), 1, "",
		"web@.service updated to revision 2 ("+h2[:7]+"); no instances were rolled: none is launched\n"+
			"The cluster has the new file of web@.service (what is not running uses it), but no rollout was started.\n")
	if rc2.hash("web@.service") != h2 || rc2.hash("web@1.service") != h2 {
		t.Errorf("files not updated")
	}
}

func TestRolloutHelp(t *testing.T) {
	r := runCLI(t, context.Background(), nil, "help", "rollout")
	if r.code != 0 || !strings.Contains(r.stdout, "fleetctl rollout - Roll a new version") ||
		!strings.Contains(r.stdout, "COMMANDS:\n\tabort\t") || !strings.Contains(r.stdout, "--max-parallel=1") {
		t.Errorf("help rollout: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "rollout", "undo", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "NAME:\n\tfleetctl rollout undo - ") ||
		!strings.Contains(r.stdout, "USAGE:\n\tfleetctl rollout undo [--to-revision N]") {
		t.Errorf("rollout undo --help: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "help")
	for _, verb := range []string{"\n\tapply\t", "\n\tdiff\t", "\n\thistory\t", "\n\trollout\t"} {
		if !strings.Contains(r.stdout, verb) {
			t.Errorf("help lacks %q", verb)
		}
	}
}

func TestTargetCount(t *testing.T) {
	for _, tc := range []struct {
		r    rollout.Rollout
		n    int
		want string
	}{
		{rollout.Rollout{Spec: rollout.Spec{Unit: "web@.service"}}, 4, "4 instances"},
		{rollout.Rollout{Spec: rollout.Spec{Unit: "web@.service"}}, 1, "1 instance"},
		{rollout.Rollout{Spec: rollout.Spec{Unit: "g.service", Global: true}}, 3, "3 machines"},
		{rollout.Rollout{Spec: rollout.Spec{Unit: "db.service"}}, 1, "1 unit"},
	} {
		if got := targetCount(tc.r, tc.n); got != tc.want {
			t.Errorf("targetCount(%s, %d) = %q, want %q", tc.r.Unit, tc.n, got, tc.want)
		}
	}
}

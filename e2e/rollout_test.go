package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// rolloutStory is four instances of roll@.service (kappa answering
// "v<N>-<instance>") on three machines, behind fleetd lb, with a client
// loop running.
type rolloutStory struct {
	t      *testing.T
	c      *testcluster.Cluster
	dir    string
	kappa  string
	prefix int
	load   *lbLoad
}

const rollInstances = 4

func rollName(i int) string { return fmt.Sprintf("roll@%d.service", i) }

// file writes version v of roll@.service into its own directory and
// returns its path. exitAtOnce makes a version whose process exits at once.
func (s *rolloutStory) file(v int, exitAtOnce bool) string {
	dir := filepath.Join(s.dir, fmt.Sprintf("v%d", v))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	exec := fmt.Sprintf("%s -listen ${FLEET_PUBLIC_IP}:%d%%i -name v%d-%%i -delay 20ms", s.kappa, s.prefix, v)
	if exitAtOnce {
		exec = "/bin/sh -c 'echo v" + fmt.Sprint(v) + " cannot start; exit 3'"
	}
	return writeUnit(s.t, dir, "roll@.service", fmt.Sprintf(`[Unit]
Description=roll %%i
[Service]
ExecStart=%s
[X-Service]
Name=roll
Port=%d%%i
CheckHTTP=/health
CheckInterval=500ms
`, exec, s.prefix))
}

type loadClient struct {
	target, method string
	keepAlive      bool
	pause          time.Duration
}

// frontend starts what clients go through ("lb": fleetd lb; "haproxy":
// the real haproxy under fleetd confd with examples/haproxy) and returns
// its URL and the client loops to run.
func (s *rolloutStory) frontend(front string) (string, []loadClient) {
	t, c := s.t, s.c
	switch front {
	case "lb":
		addr, status := freePort(t), freePort(t)
		cmd := exec.Command(fleetdBin, "lb", "--listen", addr, "--service", "roll",
			"--etcd-servers", c.EtcdURL, "--cluster-token-file", c.TokenFile, "--status-addr", status)
		_, done := startFleetdProcess(t, cmd, "fleetd lb", nil)
		url := "http://" + addr + "/"
		awaitHTTP(t, url, done)
		return url, []loadClient{
			{"GET keep-alive", "GET", true, 3 * time.Millisecond},
			{"POST keep-alive", "POST", true, 3 * time.Millisecond},
			{"GET close", "GET", false, 10 * time.Millisecond},
			{"POST close", "POST", false, 10 * time.Millisecond},
		}
	case "haproxy":
		haproxy, err := exec.LookPath("haproxy")
		if err != nil {
			t.Skip("haproxy is not installed (apt-get install haproxy); skipping:", err)
		}
		confdir, cfg, _, sock := haproxyExample(t, t.TempDir())
		t.Cleanup(func() {
			for _, pid := range processesWith(cfg) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		c.MustFleetctl("kv", "set", "/haproxy/default_service", "roll")
		bind, status := freePort(t), freePort(t)
		confd := exec.Command(fleetdBin, "confd", "--watch", "--confdir", confdir,
			"--etcd-servers", c.EtcdURL, "--cluster-token-file", c.TokenFile, "--status-addr", status)
		confd.Env = append(os.Environ(),
			"PATH="+filepath.Dir(haproxy)+":"+os.Getenv("PATH"),
			"HAPROXY_HTTP_BIND="+bind,
			"HAPROXY_STATS_SOCKET="+sock,
		)
		_, done := startFleetdProcess(t, confd, "fleetd confd", func() {
			b, _ := os.ReadFile(cfg)
			t.Logf("=== %s:\n%s", cfg, b)
		})
		url := "http://" + bind + "/"
		awaitHTTP(t, url, done)
		// A POST on a kept-alive connection that haproxy's old process
		// closes at a reload can fail (docs/discovery.md measured it; it
		// is not the rollout's doing): POSTs go on fresh connections.
		return url, []loadClient{
			{"GET keep-alive", "GET", true, 3 * time.Millisecond},
			{"GET close", "GET", false, 5 * time.Millisecond},
			{"POST close", "POST", false, 5 * time.Millisecond},
		}
	}
	t.Fatalf("unknown frontend %q", front)
	return "", nil
}

func newRolloutStory(t *testing.T, front string, opts testcluster.Options) *rolloutStory {
	t.Helper()
	bin := t.TempDir()
	s := &rolloutStory{t: t, dir: t.TempDir(), kappa: buildHelper(t, bin, "kappa", "./testdata/kappa"), prefix: freeRollPrefix(t)}
	opts.AgentTTL = 3 * time.Second
	s.c = testcluster.New(t, fleetdBin, 3, opts)
	c := s.c
	v1 := s.file(1, false)
	c.MustFleetctl("submit", v1)
	var names []string
	for i := 1; i <= rollInstances; i++ {
		names = append(names, filepath.Join(filepath.Dir(v1), rollName(i)))
	}
	c.MustFleetctl(append([]string{"start", "--no-block"}, names...)...)
	var units []string
	for i := 1; i <= rollInstances; i++ {
		units = append(units, rollName(i))
	}
	c.AwaitActive(60*time.Second, units...)

	url, clients := s.frontend(front)
	s.load = newLBLoad()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, g := range clients {
		wg.Go(func() { s.load.run(ctx, g.target, g.method, url, g.keepAlive, g.pause) })
	}
	t.Cleanup(func() {
		stop()
		wg.Wait()
		s.load.report(t)
	})
	s.awaitServing(1)
	return s
}

// freeRollPrefix returns p such that 127.0.0.{1,2,3}:p*10+{1..4} are free.
func freeRollPrefix(t *testing.T) int {
	t.Helper()
	for tries := 0; tries < 100; tries++ {
		p := freePortPrefix(t)
		free := true
		for m := 1; m <= 3 && free; m++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", m, p*10+rollInstances))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return p
		}
	}
	t.Fatal("no free port prefix")
	return 0
}

// awaitServing waits until, over the last second, only version v answered,
// from all four instances.
func (s *rolloutStory) awaitServing(v int) {
	s.t.Helper()
	want := map[string]bool{}
	for i := 1; i <= rollInstances; i++ {
		want[fmt.Sprintf("v%d-%d", v, i)] = true
	}
	s.c.Await(fmt.Sprintf("all %d instances serving v%d", rollInstances, v), 60*time.Second, func() (bool, string) {
		names, _ := s.load.since(time.Now().Add(-time.Second))
		got := map[string]bool{}
		for n := range names {
			got[n] = true
		}
		return len(got) == len(want) && func() bool {
			for n := range want {
				if !got[n] {
					return false
				}
			}
			return true
		}(), fmt.Sprint(names)
	})
}

// rolloutPhase returns the phase of the rollout of unit, per fleetctl
// rollout status -o json.
func rolloutPhase(c *testcluster.Cluster, machine int, unit string) (string, string) {
	out, errOut, code := c.FleetctlOn(machine, "rollout", "status", "-o", "json", unit)
	if code != 0 {
		return "", out + errOut
	}
	var r struct {
		Phase    string `json:"phase"`
		Progress string `json:"progress"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return "", out
	}
	return r.Phase, r.Progress
}

// TestRolloutStory: v1 -> v2, undo back to v1, and a v3 that cannot start
// rolled with --auto-revert, each under load through fleetd lb, without a
// failed request.
func TestRolloutStory(t *testing.T) { rolloutSteps(t, newRolloutStory(t, "lb", testcluster.Options{})) }

// TestRolloutHAProxy: the same story through the real haproxy, which
// fleetd confd reconfigures (and reloads) at every change.
func TestRolloutHAProxy(t *testing.T) {
	rolloutSteps(t, newRolloutStory(t, "haproxy", testcluster.Options{}))
}

func rolloutSteps(t *testing.T, s *rolloutStory) {
	c := s.c

	step := func(what string, fn func()) {
		t.Helper()
		before := s.load.failedCount()
		start := time.Now()
		fn()
		t.Logf("%s took %v", what, time.Since(start).Round(100*time.Millisecond))
		if n := s.load.failedCount() - before; n != 0 {
			t.Errorf("%s: %d requests failed", what, n)
		}
	}

	step("rollout v1 -> v2", func() {
		out := c.MustFleetctl("rollout", "--min-healthy-time", "2s", s.file(2, false))
		t.Logf("fleetctl rollout:\n%s", out)
		s.awaitServing(2)
	})
	if phase, progress := rolloutPhase(c, 1, "roll@.service"); phase != "done" {
		t.Errorf("after v2: phase %q (%s), want done", phase, progress)
	}

	step("rollout undo (-> v1)", func() {
		out := c.MustFleetctl("rollout", "undo", "--min-healthy-time", "2s", "roll@.service")
		t.Logf("fleetctl rollout undo:\n%s", out)
		s.awaitServing(1)
	})

	step("rollout v3 (exits at once) with --auto-revert", func() {
		out, errOut, code := c.Fleetctl("rollout", "--auto-revert", "--min-healthy-time", "2s", "--healthy-deadline", "30s", s.file(3, true))
		t.Logf("fleetctl rollout v3: exit %d\n%s%s", code, out, errOut)
		if code == 0 {
			t.Errorf("a rollout to a version that cannot start exited 0")
		}
		if all := out + errOut; !strings.Contains(all, "roll@1.service") || !strings.Contains(all, "fail") {
			t.Errorf("the failure does not name the unit and its failure:\n%s", all)
		}
		if all := out + errOut; !strings.Contains(all, "v3 cannot start") {
			t.Errorf("the failure does not show the unit's own output (its journal):\n%s", all)
		}
		s.awaitServing(1)
	})
	if phase, progress := rolloutPhase(c, 2, "roll@.service"); phase != "reverted" {
		t.Errorf("after v3: phase %q (%s), want reverted", phase, progress)
	}
	// The template is back at v1's content, so new instances run v1.
	if out := c.MustFleetctl("cat", "roll@.service"); !strings.Contains(out, "-name v1-%i") {
		t.Errorf("template after the revert:\n%s", out)
	}
	hist := c.MustFleetctl("history", "--no-legend", "roll@.service")
	t.Logf("fleetctl history:\n%s", hist)
	// v1, v2, v1 again (undo renumbers it), v3: three distinct files.
	if n := len(strings.Split(strings.TrimSpace(hist), "\n")); n != 3 {
		t.Errorf("history has %d revisions, want 3 (v1, v2, v3):\n%s", n, hist)
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 5*time.Second)
	evs, _, _ := c.FleetctlCtx(ectx, 0, "events", "--since", "1")
	ecancel()
	for _, typ := range []string{"rollout-started", "batch-healthy", "rollout-done", "rollout-failed", "rollout-reverted"} {
		if !strings.Contains(evs, typ) {
			t.Errorf("events lack %s:\n%s", typ, evs)
		}
	}
}

// TestRolloutSurvivesLeaderAndClient: the rollout lives in etcd. Cancelling
// fleetctl mid-rollout leaves it running, and a kill -9 of the engine
// leader mid-rollout lets the next leader finish it.
func TestRolloutSurvivesLeaderAndClient(t *testing.T) {
	// Machine 0 runs etcd: it must not be the leader that is killed.
	s := newRolloutStory(t, "lb", testcluster.Options{MachineArgs: [][]string{{"--disable-engine"}}})
	c := s.c

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() {
		out, errOut, code := c.FleetctlCtx(ctx, 1, "rollout", "--min-healthy-time", "3s", s.file(2, false))
		done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	// Let the first batch start, then interrupt fleetctl.
	c.Await("rollout running", 30*time.Second, func() (bool, string) {
		phase, progress := rolloutPhase(c, 1, "roll@.service")
		return phase == "running", progress
	})
	time.Sleep(time.Second)
	cancel()
	t.Logf("fleetctl interrupted: %s", <-done)

	// The engine leader: the machine that logged taking leadership.
	leader := -1
	for i, m := range c.Machines {
		if strings.Contains(m.Log(), "engine leadership acquired") {
			if i == 0 || leader >= 0 {
				t.Fatalf("machine %d logged engine leadership too (leader so far: %d)", i, leader)
			}
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no machine logged engine leadership")
	}
	c.Await("a batch healthy", 60*time.Second, func() (bool, string) {
		_, progress := rolloutPhase(c, 0, "roll@.service")
		return strings.HasPrefix(progress, "1/") || strings.HasPrefix(progress, "2/"), progress
	})
	t.Logf("kill -9 of the engine leader, machine %d", leader)
	c.Kill(leader)
	other := 3 - leader // the other machine that may lead (1 or 2)
	c.Await("the rollout done on the new leader", 120*time.Second, func() (bool, string) {
		phase, progress := rolloutPhase(c, other, "roll@.service")
		return phase == "done", phase + ": " + progress
	})
	// The instances of the killed machine moved; all four serve v2.
	s.awaitServing(2)
}

// TestRolloutGlobalMachineByMachine: a global unit on three machines rolls
// one machine at a time: each machine's switch to v2 comes at least
// min-healthy-time after the previous one's.
func TestRolloutGlobalMachineByMachine(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{AgentTTL: 3 * time.Second})
	dir := t.TempDir()
	kappa := buildHelper(t, t.TempDir(), "kappa", "./testdata/kappa")
	_, port, _ := net.SplitHostPort(freePort(t))
	file := func(v int) string {
		d := filepath.Join(dir, fmt.Sprint(v))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return writeUnit(t, d, "g.service", fmt.Sprintf(`[Service]
ExecStart=%s -listen ${FLEET_PUBLIC_IP}:%s -name g-v%d
[X-Fleet]
Global=true
`, kappa, port, v))
	}
	c.MustFleetctl("start", "--no-block", file(1))
	hashes := func() map[string]string { // machine -> hash of g.service
		out, _, _ := c.Fleetctl("list-units", "--no-legend", "--full", "--fields", "unit,machine,active,hash")
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[0] == "g.service" && f[2] == "active" {
				m[strings.SplitN(f[1], "/", 2)[0]] = f[3]
			}
		}
		return m
	}
	var v1 string
	c.Await("g.service active on 3 machines", 60*time.Second, func() (bool, string) {
		h := hashes()
		for _, x := range h {
			v1 = x
		}
		return len(h) == 3, fmt.Sprint(h)
	})

	const minHealthy = 2 * time.Second
	done := make(chan string, 1)
	go func() {
		out, errOut, code := c.Fleetctl("rollout", "--min-healthy-time", minHealthy.String(), file(2))
		done <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
	}()
	switched := map[string]time.Time{}
	deadline := time.Now().Add(90 * time.Second)
	for len(switched) < 3 && time.Now().Before(deadline) {
		for m, h := range hashes() {
			if _, seen := switched[m]; !seen && h != v1 {
				switched[m] = time.Now()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("fleetctl rollout: %s", <-done)
	if len(switched) != 3 {
		t.Fatalf("only %d machines switched: %v", len(switched), switched)
	}
	var times []time.Time
	for _, at := range switched {
		times = append(times, at)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		t.Logf("machine %d switched %v after machine %d", i+1, gap.Round(10*time.Millisecond), i)
		if gap < minHealthy-500*time.Millisecond {
			t.Errorf("machine %d switched %v after the previous one: not one machine at a time (min-healthy-time %v)", i+1, gap, minHealthy)
		}
	}
	if phase, progress := rolloutPhase(c, 0, "g.service"); phase != "done" {
		t.Errorf("phase %q (%s), want done", phase, progress)
	}
}

// TestApply: fleetctl apply makes the cluster's units match a directory.
// --dry-run prints the plan and writes nothing; applying the same
// directory twice writes nothing the second time; a changed file rolls
// out; --prune destroys what the directory no longer has.
func TestApply(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	writeUnit(t, dir, "hello.service", "[Service]\nExecStart=/bin/sleep 3600\n")
	writeUnit(t, dir, "tmpl@.service", "[Service]\nExecStart=/bin/sleep 3600\n")
	writeUnit(t, dir, "README", "not a unit\n")

	// unitRevs reads every unit record's modifiedIndex through the v2 API.
	unitRevs := func() string {
		out, err := exec.Command("curl", "-s", "http://"+c.Machines[0].EtcdV2+"/v2/keys/_coreos.com/fleet/units?recursive=true&sorted=true").Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		var r struct {
			Node struct {
				Nodes []struct {
					Key           string `json:"key"`
					ModifiedIndex int64  `json:"modifiedIndex"`
				} `json:"nodes"`
			} `json:"node"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("v2 answer %s: %v", out, err)
		}
		return fmt.Sprint(r.Node.Nodes)
	}

	plan := c.MustFleetctl("apply", "--dry-run", dir)
	t.Logf("apply --dry-run:\n%s", plan)
	for _, want := range []string{"create hello.service", "create tmpl@.service"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if out := c.MustFleetctl("list-unit-files", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Fatalf("--dry-run changed the cluster:\n%s", out)
	}

	out := c.MustFleetctl("apply", dir)
	t.Logf("apply:\n%s", out)
	if files := c.MustFleetctl("list-unit-files", "--no-legend"); !strings.Contains(files, "hello.service") || !strings.Contains(files, "tmpl@.service") {
		t.Fatalf("after apply:\n%s", files)
	}
	c.MustFleetctl("start", "hello.service")
	before := unitRevs()
	out = c.MustFleetctl("apply", dir)
	t.Logf("apply again:\n%s", out)
	if strings.Contains(out, "create ") || strings.Contains(out, "rollout ") || strings.Contains(out, "replace ") {
		t.Errorf("second apply planned changes:\n%s", out)
	}
	if after := unitRevs(); after != before {
		t.Errorf("second apply wrote unit records:\nbefore %s\nafter  %s", before, after)
	}

	// A changed file of a launched unit rolls out; a file removed from the
	// directory is destroyed with --prune.
	writeUnit(t, dir, "hello.service", "[Service]\nExecStart=/bin/sleep 3601\n")
	if err := os.Remove(filepath.Join(dir, "tmpl@.service")); err != nil {
		t.Fatal(err)
	}
	plan = c.MustFleetctl("apply", "--dry-run", "--prune", dir)
	t.Logf("apply --dry-run --prune:\n%s", plan)
	for _, want := range []string{"rollout hello.service", "destroy tmpl@.service"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	out = c.MustFleetctl("apply", "--prune", "--min-healthy-time", "1s", dir)
	t.Logf("apply --prune:\n%s", out)
	if cat := c.MustFleetctl("cat", "hello.service"); !strings.Contains(cat, "sleep 3601") {
		t.Errorf("hello.service not rolled:\n%s", cat)
	}
	if files := c.MustFleetctl("list-unit-files", "--no-legend"); strings.Contains(files, "tmpl@.service") {
		t.Errorf("tmpl@.service not pruned:\n%s", files)
	}
	c.AwaitActive(30*time.Second, "hello.service")
}

// TestRolloutSurge: with --max-surge 1 each instance's new version starts
// on another machine beside the old one, which stops only once the new one
// is healthy: five endpoints are registered at times, no request fails,
// and each instance ends up running once, at v2.
func TestRolloutSurge(t *testing.T) {
	s := newRolloutStory(t, "lb", testcluster.Options{})
	c := s.c
	before := s.load.failedCount()

	maxEndpoints := 0
	var mu sync.Mutex
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			out, _, code := c.Fleetctl("kv", "ls", "--recursive", "/services/roll")
			if code == 0 {
				mu.Lock()
				maxEndpoints = max(maxEndpoints, len(strings.Fields(out)))
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	out := c.MustFleetctl("rollout", "--max-surge", "1", "--min-healthy-time", "2s", s.file(2, false))
	stop()
	wg.Wait()
	t.Logf("fleetctl rollout --max-surge 1:\n%s", out)
	s.awaitServing(2)
	if n := s.load.failedCount() - before; n != 0 {
		t.Errorf("%d requests failed during the surge rollout", n)
	}
	if maxEndpoints != rollInstances+1 {
		t.Errorf("at most %d endpoints registered at once, want %d (one surge copy beside the four)", maxEndpoints, rollInstances+1)
	}
	st, _, code := c.Fleetctl("rollout", "status", "-o", "json", "roll@.service")
	if code != 0 {
		t.Fatalf("rollout status: %s", st)
	}
	var r struct {
		Phase   string `json:"phase"`
		Targets []struct {
			Name, Status, Surge string
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(st), &r); err != nil {
		t.Fatal(err)
	}
	surged := 0
	for _, tg := range r.Targets {
		if tg.Surge != "" {
			surged++
		}
	}
	// No Conflicts and three machines: every instance has somewhere to surge.
	if r.Phase != "done" || surged != rollInstances {
		t.Errorf("phase %s, %d of %d targets surged: %s", r.Phase, surged, rollInstances, st)
	}
	// Each instance runs once.
	c.Await("each instance once", 30*time.Second, func() (bool, string) {
		count := map[string]int{}
		for _, row := range c.UnitRows() {
			if strings.HasPrefix(row[0], "roll@") {
				count[row[0]]++
			}
		}
		for i := 1; i <= rollInstances; i++ {
			if count[rollName(i)] != 1 {
				return false, fmt.Sprint(count)
			}
		}
		return true, ""
	})
}

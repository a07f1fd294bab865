package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

// The test binary doubles as the shim (fleetd runs `fleetd shim DIR`).
const shimEnvVar = "FLEET_EXEC_TEST_SHIM"

var testShimEnv = []string{shimEnvVar + "=1"}

func testShim() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnvVar); mode != "" {
		os.Exit(testHelper(mode))
	}
	if os.Getenv(shimEnvVar) == "1" {
		os.Exit(ShimMain(context.Background(), os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

// adoptionRunner opens a runner on dir as fleetd would (journal, state
// directory, shims); closing it leaves the units running.
func adoptionRunner(t *testing.T, dir string, noCgroups bool) (*Runner, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Journal: j, UnitsDir: filepath.Join(dir, "units"),
		Hostname: "testhost", MachineID: "machine1", BootID: "boot1",
		DisableCgroups: noCgroups,
		StateDir:       filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, j
}

func TestAdoptAfterRunnerRestart(t *testing.T) {
	for _, mode := range []struct {
		name      string
		noCgroups bool
	}{{"cgroups", false}, {"pgroups", true}} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			flag := filepath.Join(dir, "exit-now")
			ra, ja := adoptionRunner(t, dir, mode.noCgroups)
			h := &harness{t: t, r: ra, j: ja}
			h.load("keep.service", `[Service]
ExecStart=/bin/sh -c 'i=0; while [ ! -e `+flag+` ]; do echo tick $i; i=$((i+1)); sleep 0.1; done; echo bye; exit 7'
`)
			h.start("keep.service")
			st := h.waitState("keep.service", "active", "running")
			pid := st.MainPID
			h.waitOutput("keep.service", "tick 2")

			// Runner A goes away without stopping anything (fleetd exits).
			closed := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := ra.Close(ctx); err != nil {
				t.Fatal(err)
			}
			ja.Close()
			if !alive(pid) {
				t.Fatalf("main process %d died with its runner", pid)
			}

			// Runner B on the same directories adopts it.
			rb, jb := adoptionRunner(t, dir, mode.noCgroups)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				rb.StopAll(ctx)
				rb.Close(ctx)
				jb.Close()
			})
			h = &harness{t: t, r: rb, j: jb}
			st = h.waitState("keep.service", "active", "running")
			t.Logf("adopted %v after the first runner closed", time.Since(closed))
			if st.MainPID != pid || st.Hash != "h-keep.service" {
				t.Fatalf("adopted state %+v, want main PID %d", st, pid)
			}
			status, err := rb.Status("keep.service")
			if err != nil || len(status.Processes) == 0 || status.Processes[0].PID != pid {
				t.Fatalf("status after adoption: %+v %v", status, err)
			}
			// Output written after the switch is still captured.
			before := countOutput(jb, "keep.service")
			h.eventually("new output after adoption", func() bool { return countOutput(jb, "keep.service") > before+3 }, "keep.service")
			// Followers of the new runner's journal see the shim's lines.
			fctx, fcancel := context.WithCancel(context.Background())
			ch, err := jb.Follow(fctx, "keep.service", 0)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-ch:
				if !strings.HasPrefix(e.Line, "tick") {
					t.Fatalf("followed %+v", e)
				}
			case <-time.After(patience):
				t.Fatal("Follow saw nothing from the shim")
			}
			fcancel()

			// The process exits: B learns its status.
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			h.waitState("keep.service", "failed", "failed")
			h.waitLog("keep.service", "code=exited, status=7/")
			h.waitOutput("keep.service", "bye")
			status, _ = rb.Status("keep.service")
			found := false
			for _, e := range status.Execs {
				if e.PID == pid && e.Code == "exited" && e.Status == 7 {
					found = true
				}
			}
			if !found {
				t.Fatalf("exec history lacks the exit: %+v", status.Execs)
			}
			es, _ := jb.Tail("keep.service", 0)
			if n := countLine(es, "Started "); n != 1 {
				t.Fatalf("%d Started lines, want 1", n)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "state", "keep.service", "*")); len(files) != 0 {
				t.Errorf("state left behind: %v", files)
			}
		})
	}
}

// A unit stopped by a later runner is stopped for good, including its
// ExecStop=.
func TestAdoptedUnitStops(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "stopped")
	ra, ja := adoptionRunner(t, dir, false)
	h := &harness{t: t, r: ra, j: ja}
	h.load("s.service", "[Service]\nExecStart=/bin/sleep 600\nExecStop=/bin/sh -c 'echo $MAINPID > "+marker+"; kill $MAINPID'\n")
	h.start("s.service")
	pid := h.waitState("s.service", "active", "running").MainPID
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ra.Close(ctx)
	ja.Close()

	rb, jb := adoptionRunner(t, dir, false)
	defer func() { rb.StopAll(ctx); rb.Close(ctx); jb.Close() }()
	h = &harness{t: t, r: rb, j: jb}
	h.waitState("s.service", "active", "running")
	if err := rb.Unload(ctx, "s.service"); err != nil {
		t.Fatal(err)
	}
	h.eventually("main process gone", func() bool { return !alive(pid) }, "s.service")
	b, _ := os.ReadFile(marker)
	if strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Fatalf("ExecStop saw MAINPID %q, want %d", b, pid)
	}
}

// The heartbeat: a shim stops its unit when fleetd stopped renewing the
// machine's lease for longer than the TTL.
func TestShimHeartbeat(t *testing.T) {
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	if err := os.WriteFile(hb, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	j, _ := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	r, err := New(Options{Journal: j, StateDir: filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv,
		Heartbeat: hb, HeartbeatTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, r: r, j: j}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	defer func() { r.StopAll(ctx); r.Close(ctx); j.Close() }()
	// Three units under one shim process: the heartbeat stops each, and
	// each one's ExecStopPost= runs.
	var pids []int
	for i := range 3 {
		name := fmt.Sprintf("hb%d.service", i)
		h.load(name, fmt.Sprintf("[Service]\nExecStart=/bin/sleep 600\nExecStopPost=/bin/touch %s\n", filepath.Join(dir, name+".stopped")))
		h.start(name)
		pids = append(pids, h.waitState(name, "active", "running").MainPID)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				now := time.Now()
				os.Chtimes(hb, now, now)
			}
		}
	}()
	time.Sleep(3 * time.Second)
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatal("unit stopped while the heartbeat was fresh")
		}
	}
	close(stop)
	stale := time.Now()
	for i, pid := range pids {
		name := fmt.Sprintf("hb%d.service", i)
		h.eventually("unit stopped by its shim", func() bool { return !alive(pid) }, name)
		if i == 0 {
			t.Logf("shim stopped the unit %v after the last heartbeat (TTL 2s)", time.Since(stale))
		}
		h.waitLog(name, "has not renewed the machine's lease")
		h.waitState(name, "inactive", "dead")
		if _, err := os.Stat(filepath.Join(dir, name+".stopped")); err != nil {
			t.Errorf("%s: ExecStopPost= did not run: %v", name, err)
		}
	}
}

// Units share shim processes, ShimUnits each: a shim that had its share
// takes no more, and exits once its units have ended; the units of the
// next one keep running.
func TestShimProcessesShared(t *testing.T) {
	dir := t.TempDir()
	j, _ := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	r, err := New(Options{Journal: j, StateDir: filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv, ShimUnits: 3})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, r: r, j: j}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	defer func() { r.StopAll(ctx); r.Close(ctx); j.Close() }()
	shimOf := func(name string) int {
		// The shim writes main.json right after it answers.
		var m shimMain
		h.eventually(name+"'s main.json", func() bool {
			ms, _ := filepath.Glob(filepath.Join(dir, "state", name, "shim-*", shimMainFile))
			return len(ms) == 1 && readJSON(ms[0], &m) == nil
		}, name)
		return m.Shim
	}
	var shims []int
	for i := range 4 {
		name := fmt.Sprintf("s%d.service", i)
		h.load(name, "[Service]\nExecStart=/bin/sleep 600\n")
		h.start(name)
		h.waitState(name, "active", "running")
		shims = append(shims, shimOf(name))
	}
	if shims[0] != shims[1] || shims[1] != shims[2] || shims[3] == shims[0] {
		t.Fatalf("shim processes %v, want the first three units under one, the fourth under another", shims)
	}
	for i := range 3 {
		h.stop(fmt.Sprintf("s%d.service", i))
	}
	h.eventually("the first shim process exits once its units ended", func() bool { return !alive(shims[0]) }, "s0.service")
	if !alive(shims[3]) {
		t.Fatal("the second shim process exited with the first one's units")
	}
	h.waitState("s3.service", "active", "running")
}

func countOutput(j *journal.Journal, unit string) int {
	es, _ := j.Tail(unit, 0)
	n := 0
	for _, e := range es {
		if e.Stream != journal.StreamFleet {
			n++
		}
	}
	return n
}

func countLine(es []journal.Entry, prefix string) int {
	n := 0
	for _, e := range es {
		if e.Stream == journal.StreamFleet && strings.HasPrefix(e.Line, prefix) {
			n++
		}
	}
	return n
}

var _ = syscall.SIGTERM
var _ runner.State

// A shim process that dies takes no more units: the next start goes to a
// new one.
func TestShimProcessDiesNextStartUsesANewOne(t *testing.T) {
	dir := t.TempDir()
	j, _ := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	r, err := New(Options{Journal: j, StateDir: filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, r: r, j: j}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	defer func() { r.StopAll(ctx); r.Close(ctx); j.Close() }()
	shimOf := func(name string) int {
		var m shimMain
		h.eventually(name+"'s main.json", func() bool {
			ms, _ := filepath.Glob(filepath.Join(dir, "state", name, "shim-*", shimMainFile))
			return len(ms) == 1 && readJSON(ms[0], &m) == nil
		}, name)
		return m.Shim
	}
	h.load("a.service", "[Service]\nExecStart=/bin/sleep 600\n")
	h.start("a.service")
	h.waitState("a.service", "active", "running")
	first := shimOf("a.service")
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Gone and reaped: its stdin has no reader any more (a zombie leader
	// may still have threads, and its files, for a moment).
	h.eventually("the shim process reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", first))
		return err != nil
	}, "a.service")
	h.load("b.service", "[Service]\nExecStart=/bin/sleep 600\n")
	h.start("b.service")
	h.waitState("b.service", "active", "running")
	if second := shimOf("b.service"); second == first {
		t.Fatalf("b.service went to the dead shim process %d", first)
	}
}

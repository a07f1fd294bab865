package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cgrp "github.com/fleetd/fleet/internal/cgroup"
	"github.com/fleetd/fleet/internal/runner"
)

// The test binary doubles as the processes of resource tests: a unit runs
// it with FLEET_EXEC_TEST_HELPER=MODE in its environment.
const helperEnvVar = "FLEET_EXEC_TEST_HELPER"

var sink [][]byte

func testHelper(mode string) int {
	switch mode {
	case "alloc": // allocate (and touch) 300M, 10M at a time
		fmt.Println("allocating 300M")
		for i := 0; i < 30; i++ {
			b := make([]byte, 10<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			sink = append(sink, b)
		}
		fmt.Println("allocated 300M")
		return 0
	case "spin": // one busy CPU
		runtime.GOMAXPROCS(1)
		fmt.Println("spinning")
		x := 0
		for {
			x++
		}
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func helperUnit(mode, extra string) string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return fmt.Sprintf("[Service]\nEnvironment=%s=%s\nExecStart=%s\n%s", helperEnvVar, mode, exe, extra)
}

// needEnforced skips the test unless h's runner enforces l.
func needEnforced(t *testing.T, h *harness, l cgrp.Limits) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: cgroups are only writable as root (euid", os.Geteuid(), ")")
	}
	if h.r.cg == nil {
		t.Skipf("skipping: no writable cgroup hierarchy here: %v", h.r.cgErr)
	}
	if p := h.r.cg.Plan(l, h.r.opts.CgroupVersion == 1, h.r.opts.CgroupVersion == 2); len(p.Unenforced) > 0 {
		t.Skipf("skipping: %s not enforceable here: %s", strings.Join(p.Unenforced, ", "), p.Why)
	}
}

func limitsOf(t *testing.T, text string) cgrp.Limits {
	t.Helper()
	c, err := parseConfig("x.service", parseUnit(t, text))
	if err != nil {
		t.Fatal(err)
	}
	return c.limits
}

// unitCgroup returns the running unit's current cgroup.
func (h *harness) unitCgroup(name string) *cgroup {
	h.t.Helper()
	h.r.mu.Lock()
	u := h.r.units[name]
	var g *group
	if u != nil {
		g = u.grp
	}
	h.r.mu.Unlock()
	if g == nil {
		h.t.Fatalf("%s has no group", name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cgs) == 0 {
		h.t.Fatalf("%s has no cgroup", name)
	}
	return g.cgs[len(g.cgs)-1]
}

func dirsGone(dirs []string) bool {
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			return false
		}
	}
	return true
}

func TestMemoryMaxOOMKill(t *testing.T) {
	h := newHarness(t, false)
	text := helperUnit("alloc", "MemoryMax=30M\n")
	needEnforced(t, h, limitsOf(t, text))
	h.load("oom.service", text)
	h.start("oom.service")
	h.waitOutput("oom.service", "allocating 300M")
	var oomDirs []string
	h.r.mu.Lock()
	if g := h.r.units["oom.service"].grp; g != nil {
		g.mu.Lock()
		for _, cg := range g.cgs {
			oomDirs = append(oomDirs, cg.Dirs()...)
		}
		g.mu.Unlock()
	}
	h.r.mu.Unlock()
	h.waitState("oom.service", "failed", "failed")
	st := h.r.States()["oom.service"]
	if st.Result != "oom-kill" {
		t.Fatalf("result %q, want oom-kill\n%s", st.Result, h.dump("oom.service"))
	}
	h.waitLog("oom.service", "Failed with result 'oom-kill'.")
	h.waitLog("oom.service", "A process of this unit has been killed by the OOM killer.")
	es, _ := h.j.Tail("oom.service", 0)
	for _, e := range es {
		if strings.Contains(e.Line, "allocated 300M") {
			t.Fatalf("the allocation succeeded despite MemoryMax=30M\n%s", h.dump("oom.service"))
		}
	}
	h.eventually("cgroups removed", func() bool { return dirsGone(oomDirs) }, "oom.service")
	out := runner.FormatStatus(mustStatus(t, h, "oom.service"), time.Now(), "", nil)
	t.Logf("OOM outcome: ActiveState=%s Result=%s\n%s", st.ActiveState, st.Result, out)
}

func mustStatus(t *testing.T, h *harness, name string) runner.Status {
	st, err := h.r.Status(name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCPUQuota(t *testing.T) {
	h := newHarness(t, false)
	text := helperUnit("spin", "CPUQuota=20%\n")
	needEnforced(t, h, limitsOf(t, text))
	h.load("cpu.service", text)
	h.start("cpu.service")
	h.waitState("cpu.service", "active", "running")
	h.waitOutput("cpu.service", "spinning")
	cg := h.unitCgroup("cpu.service")
	dirs := cg.Dirs()
	u0, err := cg.CPUUsage()
	if err != nil {
		t.Skipf("skipping: cannot read the unit's CPU usage: %v", err)
	}
	t0 := time.Now()
	time.Sleep(5 * time.Second)
	u1, _ := cg.CPUUsage()
	el := time.Since(t0)
	pct := float64(u1-u0) / float64(el) * 100
	t.Logf("CPUQuota=20%%: measured %.1f %% CPU over %v (cgroup %s)", pct, el.Round(time.Millisecond), cg.Path())
	if pct > 25 {
		t.Fatalf("CPU %.1f%% > 25%% with CPUQuota=20%%", pct)
	}
	if pct < 5 {
		t.Fatalf("CPU %.1f%%: the spinner does not seem to run in the unit's cgroup", pct)
	}
	h.stop("cpu.service")
	h.waitState("cpu.service", "inactive", "dead")
	h.eventually("cgroups removed", func() bool { return dirsGone(dirs) }, "cpu.service")
}

func TestTasksMax(t *testing.T) {
	h := newHarness(t, false)
	text := `[Service]
ExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6; do sleep 600 & echo forked $i; done; wait'
TasksMax=5
`
	needEnforced(t, h, limitsOf(t, text))
	h.load("tasks.service", text)
	h.start("tasks.service")
	// The shell is task 1 and starts 4 sleeps; its next fork (the 6th
	// task) fails.
	h.waitOutput("tasks.service", "forked 4")
	h.waitOutput("tasks.service", "fork")
	h.waitState("tasks.service", "failed", "failed")
	es, _ := h.j.Tail("tasks.service", 0)
	failed := false
	for _, e := range es {
		if strings.Contains(e.Line, "forked 5") {
			t.Fatalf("a 6th task was forked\n%s", h.dump("tasks.service"))
		}
		if strings.Contains(strings.ToLower(e.Line), "cannot fork") || strings.Contains(strings.ToLower(e.Line), "can't fork") {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("no fork failure logged\n%s", h.dump("tasks.service"))
	}
	if st := h.r.States()["tasks.service"]; st.Result != "exit-code" {
		t.Fatalf("result %q, want exit-code", st.Result)
	}
}

func TestLimitNOFILE(t *testing.T) {
	for _, mode := range []struct {
		name      string
		noCgroups bool
	}{{"cgroups", false}, {"pgroups", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.noCgroups)
			// A simple service (under the shim) and a oneshot (the runner's
			// own child).
			h.load("nofile.service", `[Service]
ExecStart=/bin/sh -c 'grep "Max open files" /proc/self/limits; sleep 600'
LimitNOFILE=64
`)
			h.load("nofile2.service", `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'grep "Max open files" /proc/self/limits'
LimitNOFILE=32:48
LimitCORE=0
`)
			// infinity above what the kernel allows is clamped, as systemd does.
			h.load("nofile3.service", `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'grep "Max open files" /proc/self/limits'
LimitNOFILE=16:infinity
`)
			h.start("nofile.service")
			h.start("nofile2.service")
			h.start("nofile3.service")
			e := h.waitOutput("nofile.service", "Max open files")
			if f := strings.Fields(e.Line); len(f) < 5 || f[3] != "64" || f[4] != "64" {
				t.Fatalf("limits line %q, want 64 64", e.Line)
			}
			e = h.waitOutput("nofile2.service", "Max open files")
			if f := strings.Fields(e.Line); len(f) < 5 || f[3] != "32" || f[4] != "48" {
				t.Fatalf("limits line %q, want 32 48", e.Line)
			}
			h.waitState("nofile2.service", "inactive", "dead")
			e = h.waitOutput("nofile3.service", "Max open files")
			if f := strings.Fields(e.Line); len(f) < 5 || f[3] != "16" {
				t.Fatalf("limits line %q, want 16 and the highest hard limit allowed", e.Line)
			}
			h.waitState("nofile3.service", "inactive", "dead")
		})
	}
}

func TestKillModeControlGroupV1(t *testing.T) {
	h := newHarnessVersion(t, false, 1)
	if os.Geteuid() != 0 {
		t.Skip("skipping: cgroups are only writable as root")
	}
	if _, v1 := h.r.CgroupVersions(); !v1 {
		t.Skipf("skipping: no writable cgroup v1 hierarchy: %v", h.r.cgErr)
	}
	pidfile := filepath.Join(t.TempDir(), "grandchild")
	h.load("dbl.service", fmt.Sprintf(`[Service]
ExecStart=/bin/sh -c '(setsid sh -c "sleep 600 & echo \\$! > %s; wait" &); sleep 600'
`, pidfile))
	h.start("dbl.service")
	h.waitState("dbl.service", "active", "running")
	var gc int
	h.eventually("the grandchild's pid", func() bool {
		b, err := os.ReadFile(pidfile)
		gc, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && gc > 0
	}, "dbl.service")
	cg := h.unitCgroup("dbl.service")
	if cg.V2 != "" || cg.V1[cgrp.V1Freezer] == "" {
		t.Fatalf("unit cgroup %+v: want a v1 freezer cgroup", cg.Group)
	}
	dirs := cg.Dirs()
	in := false
	for _, p := range cg.Procs() {
		in = in || p == gc
	}
	if !in {
		t.Fatalf("grandchild %d not in the unit's cgroup (%v)", gc, cg.Procs())
	}
	if st, _ := readProcStat(gc); st.sid == st.pid || st.pgid != h.r.States()["dbl.service"].MainPID {
		t.Logf("grandchild %d escaped the main process group (pgid %d sid %d)", gc, st.pgid, st.sid)
	}
	h.stop("dbl.service")
	h.waitState("dbl.service", "inactive", "dead")
	h.eventually("the double-forked grandchild killed", func() bool { return !alive(gc) }, "dbl.service")
	h.eventually("cgroups removed", func() bool { return dirsGone(dirs) }, "dbl.service")
}

func TestLimitsNotEnforcedWarning(t *testing.T) {
	h := newHarness(t, true)
	h.load("warn.service", "[Service]\nExecStart=/bin/sleep 600\nMemoryMax=30M\nTasksMax=10\n")
	h.start("warn.service")
	h.waitState("warn.service", "active", "running")
	h.waitLog("warn.service", "Resource limits not enforced: MemoryMax=, TasksMax= (cgroups are disabled)")
}

func TestResourceOptionsParse(t *testing.T) {
	good := map[string]func(c *config) bool{
		"MemoryMax=30M":               func(c *config) bool { return c.limits.MemoryMax == 30<<20 },
		"MemoryMax=infinity":          func(c *config) bool { return c.limits.MemoryMax == cgrp.Infinity },
		"MemoryMax=1024":              func(c *config) bool { return c.limits.MemoryMax == 1024 },
		"MemoryHigh=1G":               func(c *config) bool { return c.limits.MemoryHigh == 1<<30 },
		"MemoryMax=50%":               func(c *config) bool { return c.limits.MemoryMax > 0 },
		"CPUQuota=20%":                func(c *config) bool { return c.limits.CPUQuota == 20000 },
		"CPUQuota=150%":               func(c *config) bool { return c.limits.CPUQuota == 150000 },
		"CPUWeight=500":               func(c *config) bool { return c.limits.CPUWeight == 500 },
		"TasksMax=5":                  func(c *config) bool { return c.limits.TasksMax == 5 },
		"TasksMax=infinity":           func(c *config) bool { return c.limits.TasksMax == cgrp.Infinity },
		"IOWeight=10":                 func(c *config) bool { return c.limits.IOWeight == 10 },
		"LimitNOFILE=64":              func(c *config) bool { return len(c.rlimits) == 1 && c.rlimits[0].Cur == 64 && c.rlimits[0].Max == 64 },
		"LimitNOFILE=1024:4096":       func(c *config) bool { return c.rlimits[0].Cur == 1024 && c.rlimits[0].Max == 4096 },
		"LimitCORE=infinity":          func(c *config) bool { return c.rlimits[0].Cur == rlimInfinity },
		"LimitAS=1G":                  func(c *config) bool { return c.rlimits[0].Cur == 1<<30 },
		"LimitCPU=1min":               func(c *config) bool { return c.rlimits[0].Cur == 60 },
		"LimitSTACK=8M:infinity":      func(c *config) bool { return c.rlimits[0].Cur == 8<<20 && c.rlimits[0].Max == rlimInfinity },
		"LimitMEMLOCK=64K":            func(c *config) bool { return c.rlimits[0].Cur == 64<<10 },
		"LimitNPROC=100":              func(c *config) bool { return c.rlimits[0].Resource == unix.RLIMIT_NPROC && c.rlimits[0].Cur == 100 },
		"LimitFSIZE=10M":              func(c *config) bool { return c.rlimits[0].Cur == 10<<20 },
		"LimitDATA=infinity:infinity": func(c *config) bool { return c.rlimits[0].Max == rlimInfinity },
	}
	for opt, ok := range good {
		c, err := parseConfig("x.service", parseUnit(t, "[Service]\nExecStart=/bin/true\n"+opt+"\n"))
		if err != nil {
			t.Errorf("%s: %v", opt, err)
			continue
		}
		if !ok(c) {
			t.Errorf("%s: parsed as %+v %+v", opt, c.limits, c.rlimits)
		}
	}
	bad := []string{
		"MemoryMax=-1", "MemoryMax=30Q", "MemoryMax=abc", "MemoryHigh=-5M",
		"CPUQuota=20", "CPUQuota=-10%", "CPUQuota=abc%",
		"CPUWeight=0", "CPUWeight=10001", "CPUWeight=-3",
		"TasksMax=-1", "TasksMax=0", "TasksMax=lots",
		"IOWeight=0", "IOWeight=20000",
		"LimitNOFILE=-1", "LimitNOFILE=64:32", "LimitNOFILE=lots", "LimitAS=1X",
	}
	for _, opt := range bad {
		_, err := parseConfig("x.service", parseUnit(t, "[Service]\nExecStart=/bin/true\n"+opt+"\n"))
		if err == nil {
			t.Errorf("%s: accepted", opt)
			continue
		}
		if !strings.Contains(err.Error(), opt) {
			t.Errorf("%s: error %q does not name the key and value", opt, err)
		}
	}
	// A unit with a bad value loads with LoadState error and fails to start.
	h := newHarness(t, true)
	h.load("bad.service", "[Service]\nExecStart=/bin/sleep 600\nMemoryMax=-1\n")
	if st := h.r.States()["bad.service"]; st.LoadState != "error" {
		t.Fatalf("load state %q", st.LoadState)
	}
	st, _ := h.r.Status("bad.service")
	if !strings.Contains(st.Error, "MemoryMax=-1") {
		t.Fatalf("error %q", st.Error)
	}
}

// A unit in v1 cgroups with limits is adopted by a later runner with its
// cgroups: Status lists its processes through them, a stop kills a
// double-forked grandchild and removes them.
func TestAdoptV1Cgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: cgroups are only writable as root")
	}
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "grandchild")
	ra, ja := adoptionRunner(t, dir, false)
	h := &harness{t: t, r: ra, j: ja}
	text := fmt.Sprintf(`[Service]
ExecStart=/bin/sh -c '(setsid sh -c "sleep 600 & echo \\$! > %s; wait" &); sleep 600'
MemoryMax=64M
TasksMax=20
`, pidfile)
	needEnforced(t, h, limitsOf(t, text))
	h.load("adoptv1.service", text)
	h.start("adoptv1.service")
	h.waitState("adoptv1.service", "active", "running")
	var gc int
	h.eventually("the grandchild's pid", func() bool {
		b, err := os.ReadFile(pidfile)
		gc, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && gc > 0
	}, "adoptv1.service")
	cg := h.unitCgroup("adoptv1.service")
	dirs := cg.Dirs()
	ctx, cancel := contextWithPatience()
	defer cancel()
	ra.Close(ctx)
	ja.Close()
	if !alive(gc) {
		t.Fatal("grandchild died with the runner")
	}

	rb, jb := adoptionRunner(t, dir, false)
	defer func() { rb.StopAll(ctx); rb.Close(ctx); jb.Close() }()
	h = &harness{t: t, r: rb, j: jb}
	h.waitState("adoptv1.service", "active", "running")
	acg := h.unitCgroup("adoptv1.service")
	if strings.Join(acg.Dirs(), " ") != strings.Join(dirs, " ") {
		t.Fatalf("adopted cgroups %v, want %v", acg.Dirs(), dirs)
	}
	h.waitProcesses("adoptv1.service", 4, "the unit's 4 processes, grandchild included")
	h.stop("adoptv1.service")
	h.waitState("adoptv1.service", "inactive", "dead")
	h.eventually("grandchild killed", func() bool { return !alive(gc) }, "adoptv1.service")
	h.eventually("cgroups removed", func() bool { return dirsGone(dirs) }, "adoptv1.service")
	// The first runner's root directories, kept while the unit ran (in
	// fleetd, a later runner removes them once their runner's PID is
	// gone; here that is this process).
	ra.cg.remove()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Dir(d)); err == nil {
			t.Errorf("root %s left behind", filepath.Dir(d))
		}
	}
}

func contextWithPatience() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), patience)
}

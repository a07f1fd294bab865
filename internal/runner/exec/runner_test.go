package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/runner"
)

const patience = 60 * time.Second // generous: the machine is shared

type harness struct {
	t *testing.T
	r *Runner
	j *journal.Journal
}

func newHarness(t *testing.T, noCgroups bool) *harness {
	t.Helper()
	return newHarnessVersion(t, noCgroups, 0)
}

// newHarnessVersion is newHarness with Options.CgroupVersion.
func newHarnessVersion(t *testing.T, noCgroups bool, cgroupVersion int) *harness {
	t.Helper()
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Journal: j, UnitsDir: filepath.Join(dir, "units"),
		Hostname: "testhost", MachineID: "machine1", BootID: "boot1",
		DisableCgroups: noCgroups, CgroupVersion: cgroupVersion,
		// Main processes run under shims, as in fleetd (shim_test.go).
		StateDir: filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := r.StopAll(ctx); err != nil {
			t.Errorf("StopAll: %v", err)
		}
		r.Close(ctx)
		j.Close()
	})
	return &harness{t: t, r: r, j: j}
}

func parseUnit(t testing.TB, text string) []fleet.UnitOption {
	t.Helper()
	opts, err := sdunit.DeserializeOptions(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]fleet.UnitOption, len(opts))
	for i, o := range opts {
		out[i] = fleet.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

func (h *harness) load(name, text string) {
	h.t.Helper()
	if err := h.r.Load(context.Background(), runner.Unit{Name: name, Hash: "h-" + name, Options: parseUnit(h.t, text)}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) start(name string) {
	h.t.Helper()
	if err := h.r.Start(context.Background(), name); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) stop(name string) {
	h.t.Helper()
	if err := h.r.Stop(context.Background(), name); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) dump(name string) string {
	st, err := h.r.Status(name)
	if err != nil {
		return err.Error()
	}
	es, _ := h.j.Tail(name, 30)
	var lines []string
	for _, e := range es {
		s, _ := journal.Format(e, "short")
		lines = append(lines, s)
	}
	return runner.FormatStatus(st, time.Now(), "testhost", lines)
}

// eventually polls cond until it holds or patience runs out.
func (h *harness) eventually(what string, cond func() bool, unitName string) {
	h.t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s\n%s", what, h.dump(unitName))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitState(name, active, sub string) runner.State {
	h.t.Helper()
	var st runner.State
	h.eventually(fmt.Sprintf("%s to be %s (%s)", name, active, sub), func() bool {
		st = h.r.States()[name]
		return st.ActiveState == active && (sub == "" || st.SubState == sub)
	}, name)
	return st
}

// waitLog waits for a journal entry of unit containing s.
func (h *harness) waitLog(name, s string) journal.Entry {
	h.t.Helper()
	return h.waitEntry(name, fmt.Sprintf("%q in the journal of %s", s, name), func(e journal.Entry) bool {
		return strings.Contains(e.Line, s)
	})
}

// waitOutput waits for a line the unit's processes wrote containing s.
func (h *harness) waitOutput(name, s string) journal.Entry {
	h.t.Helper()
	return h.waitEntry(name, fmt.Sprintf("output %q from %s", s, name), func(e journal.Entry) bool {
		return e.Stream != journal.StreamFleet && strings.Contains(e.Line, s)
	})
}

// waitEntry waits for a journal entry of unit name that match accepts.
func (h *harness) waitEntry(name, what string, match func(journal.Entry) bool) journal.Entry {
	h.t.Helper()
	var found journal.Entry
	h.eventually(what, func() bool {
		es, _ := h.j.Tail(name, 0)
		for _, e := range es {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	}, name)
	return found
}

// waitProcesses waits until unit name has n processes (what says which,
// in a timeout message) and returns their PIDs.
func (h *harness) waitProcesses(name string, n int, what string) []int {
	h.t.Helper()
	var pids []int
	h.eventually(what, func() bool {
		st, _ := h.r.Status(name)
		pids = pids[:0]
		for _, p := range st.Processes {
			pids = append(pids, p.PID)
		}
		return len(pids) == n
	}, name)
	return pids
}

func pidsGone(pids []int) bool {
	for _, p := range pids {
		if alive(p) {
			return false
		}
	}
	return true
}

func TestSimpleOutputToJournal(t *testing.T) {
	h := newHarness(t, false)
	h.load("hello.service", `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "echo Hello World; echo oops >&2; exec sleep 600"
`)
	h.start("hello.service")
	st := h.waitState("hello.service", "active", "running")
	if st.MainPID <= 0 || st.Since.IsZero() || st.LoadState != "loaded" || st.Hash != "h-hello.service" {
		t.Fatalf("state %+v", st)
	}
	e := h.waitOutput("hello.service", "Hello World")
	if e.Ident != "sh" || e.PID != st.MainPID || e.Stream != "stdout" || e.Host != "testhost" || e.Time.IsZero() {
		t.Fatalf("entry %+v (main pid %d)", e, st.MainPID)
	}
	if e := h.waitLog("hello.service", "oops"); e.Stream != "stderr" {
		t.Fatalf("stderr entry %+v", e)
	}
	h.waitLog("hello.service", "Started Hello World.")

	// Start again is a no-op.
	h.start("hello.service")
	if got := h.waitState("hello.service", "active", "running"); got.MainPID != st.MainPID {
		t.Fatalf("restarted on second Start: %d -> %d", st.MainPID, got.MainPID)
	}
	status, err := h.r.Status("hello.service")
	if err != nil || len(status.Processes) != 1 || !strings.Contains(status.Processes[0].Cmd, "sleep 600") {
		t.Fatalf("status %+v %v", status, err)
	}
	out := runner.FormatStatus(status, time.Now(), "testhost", nil)
	if !strings.Contains(out, fmt.Sprintf("Main PID: %d (sleep)", st.MainPID)) || !strings.Contains(out, "Active: active (running) since") {
		t.Fatalf("formatted status:\n%s", out)
	}
	if _, err := os.Stat(status.UnitPath); err != nil {
		t.Fatalf("unit file: %v", err)
	}

	h.stop("hello.service")
	h.waitState("hello.service", "inactive", "dead")
	h.waitLog("hello.service", "Stopped Hello World.")
	h.eventually("main process gone", func() bool { return !alive(st.MainPID) }, "hello.service")
	h.stop("hello.service") // no-op
	h.waitState("hello.service", "inactive", "dead")
}

func TestChangedNotified(t *testing.T) {
	h := newHarness(t, false)
	h.load("c.service", "[Service]\nExecStart=/bin/sleep 600\n")
	// Drain, then expect a notification for the start.
	select {
	case <-h.r.Changed():
	default:
	}
	h.start("c.service")
	select {
	case <-h.r.Changed():
	case <-time.After(patience):
		t.Fatal("no change notification")
	}
}

func TestOneshot(t *testing.T) {
	h := newHarness(t, false)
	h.load("remain.service", `[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStart=/bin/echo second
`)
	h.start("remain.service")
	h.waitState("remain.service", "active", "exited")
	h.waitOutput("remain.service", "second")
	st, _ := h.r.Status("remain.service")
	n := 0
	for _, e := range st.Execs {
		if e.Kind == "ExecStart" && e.Code == "exited" && e.Status == 0 {
			n++
		}
	}
	if n != 2 || st.MainPID != 0 {
		t.Fatalf("execs %+v main %d", st.Execs, st.MainPID)
	}
	h.stop("remain.service")
	h.waitState("remain.service", "inactive", "dead")

	h.load("once.service", `[Service]
Type=oneshot
ExecStart=/bin/sh -c "echo ran once"
`)
	h.start("once.service")
	h.waitOutput("once.service", "ran once")
	h.waitLog("once.service", "Deactivated successfully.")
	h.waitState("once.service", "inactive", "dead")

	h.load("multi.service", "[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n")
	if st := h.r.States()["multi.service"]; st.LoadState != "error" {
		t.Fatalf("multiple ExecStart for simple: %+v", st)
	}
}

func TestForkingPIDFile(t *testing.T) {
	h := newHarness(t, false)
	pidfile := filepath.Join(t.TempDir(), "daemon.pid")
	h.load("fork.service", fmt.Sprintf(`[Service]
Type=forking
PIDFile=%s
ExecStart=/bin/sh -c "sleep 600 & echo $! > %s; echo forked"
`, pidfile, pidfile))
	h.start("fork.service")
	st := h.waitState("fork.service", "active", "running")
	b, _ := os.ReadFile(pidfile)
	want, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if st.MainPID != want || want == 0 {
		t.Fatalf("main pid %d, pid file %d", st.MainPID, want)
	}
	h.waitLog("fork.service", "forked")
	// The daemon dies on its own: the unit goes down.
	syscall.Kill(want, syscall.SIGKILL)
	h.waitState("fork.service", "failed", "failed")
	h.waitLog("fork.service", "code=killed, status=9/KILL")
}

func TestForkingGroup(t *testing.T) {
	for _, mode := range []struct {
		name      string
		noCgroups bool
	}{{"cgroup", false}, {"pgroup", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.noCgroups)
			if !mode.noCgroups && !h.r.UsesCgroups() {
				t.Skip("cgroup v2 not writable here")
			}
			h.load("forkgrp.service", `[Service]
Type=forking
GuessMainPID=no
ExecStart=/bin/sh -c "sleep 600 & sleep 600 & exit 0"
`)
			h.start("forkgrp.service")
			h.waitState("forkgrp.service", "active", "running")
			pids := h.waitProcesses("forkgrp.service", 2, "two daemons")
			h.stop("forkgrp.service")
			h.waitState("forkgrp.service", "inactive", "dead")
			h.eventually("daemons gone", func() bool { return pidsGone(pids) }, "forkgrp.service")
		})
	}
}

func TestExecStartPreFailure(t *testing.T) {
	h := newHarness(t, false)
	marker := filepath.Join(t.TempDir(), "started")
	h.load("pre.service", fmt.Sprintf(`[Service]
ExecStartPre=/bin/false
ExecStart=/bin/touch %s
`, marker))
	h.start("pre.service")
	h.waitState("pre.service", "failed", "failed")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("ExecStart ran after failed ExecStartPre")
	}
	st, _ := h.r.Status("pre.service")
	if len(st.Execs) != 1 || st.Execs[0].Kind != "ExecStartPre" || st.Execs[0].Status != 1 || st.Execs[0].Code != "exited" {
		t.Fatalf("execs %+v", st.Execs)
	}
	h.waitLog("pre.service", "Failed with result 'exit-code'.")
	h.waitLog("pre.service", "Control process exited, code=exited, status=1/FAILURE")
	if out := runner.FormatStatus(st, time.Now(), "", nil); !strings.Contains(out, "ExecStartPre=/bin/false (code=exited, status=1/FAILURE)") ||
		!strings.Contains(out, "failed (Result: exit-code)") {
		t.Fatalf("status:\n%s", out)
	}

	h.load("preok.service", `[Service]
ExecStartPre=-/bin/false
ExecStartPre=/bin/true
ExecStart=/bin/sleep 600
`)
	h.start("preok.service")
	h.waitState("preok.service", "active", "running")
}

func TestExecStartPost(t *testing.T) {
	h := newHarness(t, false)
	marker := filepath.Join(t.TempDir(), "post")
	h.load("post.service", fmt.Sprintf(`[Service]
ExecStart=/bin/sleep 600
ExecStartPost=/bin/sh -c "echo post > %s"
`, marker))
	h.start("post.service")
	h.waitState("post.service", "active", "running")
	if b, err := os.ReadFile(marker); err != nil || string(b) != "post\n" {
		t.Fatalf("marker %q %v", b, err)
	}
	st, _ := h.r.Status("post.service")
	if len(st.Execs) != 2 || st.Execs[1].Kind != "ExecStartPost" || st.Execs[1].End.IsZero() || st.Execs[1].Status != 0 {
		t.Fatalf("execs %+v", st.Execs)
	}

	h.load("postfail.service", "[Service]\nExecStart=/bin/sleep 600\nExecStartPost=/bin/false\n")
	h.start("postfail.service")
	h.waitState("postfail.service", "failed", "failed")
}

func TestStopEscalation(t *testing.T) {
	for _, mode := range []struct {
		name      string
		noCgroups bool
	}{{"cgroup", false}, {"pgroup", true}} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.noCgroups)
			h.load("stubborn.service", `[Service]
ExecStart=/bin/sh -c 'trap "" TERM; sleep 600 & sh -c "sleep 600 & wait" & echo ready; wait'
ExecStop=/bin/sh -c "echo stopping $MAINPID"
ExecStopPost=/bin/sh -c "echo post result=$SERVICE_RESULT"
TimeoutStopSec=1s
`)
			h.start("stubborn.service")
			st := h.waitState("stubborn.service", "active", "running")
			h.waitLog("stubborn.service", "ready")
			pids := h.waitProcesses("stubborn.service", 4, "4 processes")
			h.stop("stubborn.service")
			h.waitState("stubborn.service", "failed", "failed")
			h.waitLog("stubborn.service", fmt.Sprintf("stopping %d", st.MainPID))
			h.waitLog("stubborn.service", "State 'stop-sigterm' timed out. Killing.")
			h.waitLog("stubborn.service", "post result=timeout")
			h.eventually("every process gone", func() bool { return pidsGone(pids) }, "stubborn.service")
		})
	}
}

func TestKillSignal(t *testing.T) {
	h := newHarness(t, false)
	h.load("sig.service", `[Service]
ExecStart=/bin/sh -c 'trap "echo got HUP; exit 0" HUP; echo ready; while :; do sleep 0.1; done'
KillSignal=SIGHUP
KillMode=mixed
`)
	h.start("sig.service")
	h.waitLog("sig.service", "ready")
	h.stop("sig.service")
	h.waitState("sig.service", "inactive", "dead")
	h.waitLog("sig.service", "got HUP")
}

func TestRestartOnFailure(t *testing.T) {
	h := newHarness(t, false)
	count := filepath.Join(t.TempDir(), "count")
	h.load("flaky.service", fmt.Sprintf(`[Service]
ExecStart=/bin/sh -c "echo run >> %s; exit 3"
Restart=on-failure
RestartSec=200ms
`, count))
	h.start("flaky.service")
	h.eventually("three runs", func() bool {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "run") >= 3
	}, "flaky.service")
	st, _ := h.r.Status("flaky.service")
	if st.Restarts < 2 {
		t.Fatalf("restarts %d", st.Restarts)
	}
	h.waitLog("flaky.service", "Scheduled restart job, restart counter is at 2.")
	h.waitLog("flaky.service", "Main process exited, code=exited, status=3")
	h.stop("flaky.service")
	// The stop may land while the process is failing on its own: either
	// final state is right, a restart is not.
	h.eventually("flaky.service down", func() bool {
		st := h.r.States()["flaky.service"]
		return st.ActiveState == "inactive" || st.ActiveState == "failed"
	}, "flaky.service")
	b, _ := os.ReadFile(count)
	n := strings.Count(string(b), "run")
	// Give a (wrongly) scheduled restart plenty of chances to happen.
	time.Sleep(time.Second)
	if b2, _ := os.ReadFile(count); strings.Count(string(b2), "run") != n {
		t.Fatal("restarted after stop")
	}
}

func TestRestartNo(t *testing.T) {
	h := newHarness(t, false)
	count := filepath.Join(t.TempDir(), "count")
	h.load("once.service", fmt.Sprintf(`[Service]
ExecStart=/bin/sh -c "echo run >> %s; exit 3"
RestartSec=100ms
`, count))
	h.start("once.service")
	h.waitState("once.service", "failed", "failed")
	time.Sleep(time.Second)
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "run"); n != 1 {
		t.Fatalf("ran %d times", n)
	}
	if st := h.r.States()["once.service"]; st.ActiveState != "failed" {
		t.Fatalf("state %+v", st)
	}
}

func TestEnvironmentAndSpecifiers(t *testing.T) {
	h := newHarness(t, false)
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# settings\nFROMFILE=\"file value\"\nOVERRIDE=file\n"), 0o644)
	h.load("env@inst.service", fmt.Sprintf(`[Service]
Type=oneshot
Environment="GREETING=hello world" SPLIT="a b" OVERRIDE=env
Environment=UNIT=%%n
EnvironmentFile=%s
EnvironmentFile=-/nonexistent/env
ExecStart=/bin/sh -c 'for a in "$@"; do echo "<$a>"; done' sh ${GREETING} $SPLIT ${FROMFILE} ${OVERRIDE} ${UNIT} \
   %%n %%N %%p %%i %%H %%m %%b %%%% $$HOME
`, envFile))
	h.start("env@inst.service")
	h.waitLog("env@inst.service", "Deactivated successfully.")
	var got []string
	es, _ := h.j.Tail("env@inst.service", 0)
	for _, e := range es {
		if e.Stream == "stdout" {
			got = append(got, e.Line)
		}
	}
	want := []string{"<hello world>", "<a>", "<b>", "<file value>", "<file>", "<env@inst.service>",
		"<env@inst.service>", "<env@inst>", "<env>", "<inst>", "<testhost>", "<machine1>", "<boot1>", "<%>", "<$HOME>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got  %q\nwant %q\n%s", got, want, h.dump("env@inst.service"))
	}

	h.load("noenv.service", "[Service]\nType=oneshot\nEnvironmentFile=/nonexistent/env\nExecStart=/bin/true\n")
	h.start("noenv.service")
	h.waitState("noenv.service", "failed", "failed")
	h.waitLog("noenv.service", "environment file")
}

func TestBaseEnvironment(t *testing.T) {
	h := newHarness(t, false)
	h.load("base.service", `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "PATH=$PATH HOME=$HOME USER=$USER"'
`)
	h.start("base.service")
	e := h.waitOutput("base.service", "PATH=")
	if !strings.Contains(e.Line, "/usr/bin") || strings.Contains(e.Line, "HOME= ") || strings.Contains(e.Line, "USER=\"") {
		t.Fatalf("env line %q", e.Line)
	}
}

func TestWorkingDirectory(t *testing.T) {
	h := newHarness(t, false)
	dir := t.TempDir()
	h.load("wd.service", fmt.Sprintf("[Service]\nType=oneshot\nWorkingDirectory=%s\nExecStart=/bin/pwd\n", dir))
	h.start("wd.service")
	h.waitOutput("wd.service", dir)

	h.load("wdopt.service", "[Service]\nType=oneshot\nWorkingDirectory=-/nonexistent/dir\nExecStart=/bin/pwd\n")
	h.start("wdopt.service")
	if e := h.waitOutput("wdopt.service", "/"); e.Line != "/" {
		t.Fatalf("pwd = %q", e.Line)
	}

	h.load("wdbad.service", "[Service]\nType=oneshot\nWorkingDirectory=/nonexistent/dir\nExecStart=/bin/pwd\n")
	h.start("wdbad.service")
	h.waitState("wdbad.service", "failed", "failed")
	st, _ := h.r.Status("wdbad.service")
	if len(st.Execs) == 0 || st.Execs[0].Status != 200 {
		t.Fatalf("execs %+v", st.Execs)
	}
}

func TestUserNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to User=nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	h := newHarness(t, false)
	h.load("nobody.service", `[Service]
Type=oneshot
User=nobody
ExecStart=/bin/sh -c 'echo "uid=$(id -u) gid=$(id -g) user=$USER"'
`)
	h.start("nobody.service")
	h.waitOutput("nobody.service", fmt.Sprintf("uid=%s gid=%s user=nobody", nobody.Uid, nobody.Gid))

	h.load("ghost.service", "[Service]\nType=oneshot\nUser=no-such-user-xyz\nExecStart=/bin/true\n")
	h.start("ghost.service")
	h.waitState("ghost.service", "failed", "failed")
}

func TestDependencies(t *testing.T) {
	h := newHarness(t, false)
	order := filepath.Join(t.TempDir(), "order")
	h.load("db.service", fmt.Sprintf(`[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c "sleep 0.5; echo db >> %s"
`, order))
	h.load("app.service", fmt.Sprintf(`[Unit]
Requires=db.service
After=db.service

[Service]
ExecStart=/bin/sh -c "echo app >> %s; exec sleep 600"
`, order))
	h.start("app.service")
	h.waitState("app.service", "active", "running")
	h.waitState("db.service", "active", "exited")
	// app is active once started, maybe before its echo ran.
	h.eventually("app's line", func() bool {
		b, _ := os.ReadFile(order)
		return strings.Count(string(b), "\n") >= 2
	}, "app.service")
	if b, _ := os.ReadFile(order); string(b) != "db\napp\n" {
		t.Fatalf("order %q", b)
	}

	h.load("broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	h.load("needsbroken.service", "[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 600\n")
	h.start("needsbroken.service")
	h.waitState("needsbroken.service", "failed", "")
	h.waitLog("needsbroken.service", "Dependency failed for needsbroken.service.")
	h.waitState("broken.service", "failed", "failed")

	h.load("wantsbroken.service", "[Unit]\nWants=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 600\n")
	h.start("wantsbroken.service")
	h.waitState("wantsbroken.service", "active", "running")

	// A Requires= on a unit fleet does not manage here (docker.service in
	// the seeds) is taken as provided by the host, as systemd would have it.
	h.load("hostdep.service", "[Unit]\nRequires=docker.service\nAfter=docker.service\n[Service]\nExecStart=/bin/sleep 600\n")
	h.start("hostdep.service")
	h.waitState("hostdep.service", "active", "running")
	h.waitLog("hostdep.service", "docker.service is not managed by fleet here")
}

func TestInvalidUnit(t *testing.T) {
	h := newHarness(t, false)
	cases := map[string]string{
		"noexec.service":   "[Service]\nType=simple\n",
		"badtype.service":  "[Service]\nType=bogus\nExecStart=/bin/true\n",
		"badquote.service": "[Service]\nExecStart=/bin/echo \"unterminated\n",
		"badtime.service":  "[Service]\nExecStart=/bin/true\nTimeoutStopSec=soon\n",
		"sock.socket":      "[Socket]\nListenStream=80\n",
	}
	for name, text := range cases {
		h.load(name, text)
		st, err := h.r.Status(name)
		if err != nil || st.LoadState != "error" || st.Error == "" {
			t.Fatalf("%s: %+v %v", name, st, err)
		}
	}
	if st, _ := h.r.Status("noexec.service"); !strings.Contains(st.Error, "ExecStart") {
		t.Fatalf("error %q", st.Error)
	}
	h.start("noexec.service")
	h.waitState("noexec.service", "failed", "failed")
	if err := h.r.Load(context.Background(), runner.Unit{Name: "../escape.service"}); err == nil {
		t.Fatal("bad unit name accepted")
	}
	if err := h.r.Start(context.Background(), "unknown.service"); !errors.Is(err, runner.ErrNotLoaded) {
		t.Fatalf("start unknown: %v", err)
	}
}

func TestUnload(t *testing.T) {
	h := newHarness(t, false)
	h.load("gone.service", "[Service]\nExecStart=/bin/sh -c 'sleep 600 & exec sleep 600'\n")
	h.start("gone.service")
	h.waitState("gone.service", "active", "running")
	pids := h.waitProcesses("gone.service", 2, "two processes")
	st, _ := h.r.Status("gone.service")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.r.Unload(ctx, "gone.service"); err != nil {
		t.Fatal(err)
	}
	if !pidsGone(pids) {
		t.Fatalf("processes left after Unload: %v", pids)
	}
	if _, ok := h.r.States()["gone.service"]; ok {
		t.Fatal("still in States")
	}
	if _, err := h.r.Status("gone.service"); !errors.Is(err, runner.ErrNotLoaded) {
		t.Fatalf("status after unload: %v", err)
	}
	if _, err := os.Stat(st.UnitPath); !os.IsNotExist(err) {
		t.Fatalf("unit file left: %v", err)
	}
}

func TestStartTimeout(t *testing.T) {
	h := newHarness(t, false)
	h.load("slow.service", "[Service]\nExecStartPre=/bin/sleep 600\nExecStart=/bin/sleep 600\nTimeoutStartSec=300ms\n")
	h.start("slow.service")
	h.waitState("slow.service", "failed", "failed")
	h.waitLog("slow.service", "Start-pre operation timed out. Terminating.")
	h.waitLog("slow.service", "Failed with result 'timeout'.")
}

func TestStopDuringStart(t *testing.T) {
	h := newHarness(t, false)
	h.load("abort.service", "[Service]\nExecStartPre=/bin/sleep 600\nExecStart=/bin/sleep 600\n")
	h.start("abort.service")
	h.waitState("abort.service", "activating", "start-pre")
	h.stop("abort.service")
	h.waitState("abort.service", "inactive", "dead")
}

func TestExecNotFound(t *testing.T) {
	h := newHarness(t, false)
	h.load("nf.service", "[Service]\nExecStart=no-such-binary-xyz --flag\n")
	h.start("nf.service")
	h.waitState("nf.service", "failed", "failed")
	st, _ := h.r.Status("nf.service")
	if len(st.Execs) != 1 || st.Execs[0].Status != 203 {
		t.Fatalf("execs %+v", st.Execs)
	}
	// Relative names are looked up in PATH; "@" gives argv[0].
	h.load("path.service", "[Service]\nType=oneshot\nExecStart=@sh myname -c 'echo $0'\n")
	h.start("path.service")
	h.waitOutput("path.service", "myname")
}

func TestOptionsEnv(t *testing.T) {
	h := newHarness(t, false)
	h.r.opts.Env = []string{"FLEETCTL_ENDPOINT=http://10.0.0.1:49153", "OVERRIDE=daemon"}
	h.load("optenv.service", `[Service]
Type=oneshot
Environment=OVERRIDE=unit
ExecStart=/bin/sh -c 'echo "ep=$FLEETCTL_ENDPOINT ov=$OVERRIDE"'
`)
	h.start("optenv.service")
	e := h.waitOutput("optenv.service", "ep=")
	if e.Line != "ep=http://10.0.0.1:49153 ov=unit" {
		t.Fatalf("env line %q", e.Line)
	}
}

// TestPrivilegedEnv: PrivilegedEnv reaches units that run as fleetd's own
// user, never a unit with another User= (the admin token must not give
// User=nobody more than nobody has).
func TestPrivilegedEnv(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to User=nobody")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	h := newHarness(t, false)
	h.r.opts.Env = []string{"PLAIN=all"}
	h.r.opts.PrivilegedEnv = []string{"SECRET=admin"}
	h.load("own.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"own plain=$PLAIN secret=$SECRET\"'\n")
	h.load("nobody-env.service", "[Service]\nType=oneshot\nUser=nobody\nExecStart=/bin/sh -c 'echo \"nobody plain=$PLAIN secret=$SECRET\"'\n")
	h.start("own.service")
	h.start("nobody-env.service")
	if e := h.waitOutput("own.service", "own "); e.Line != "own plain=all secret=admin" {
		t.Fatalf("own user's unit: %q", e.Line)
	}
	if e := h.waitOutput("nobody-env.service", "nobody "); e.Line != "nobody plain=all secret=" {
		t.Fatalf("User=nobody unit: %q", e.Line)
	}
}

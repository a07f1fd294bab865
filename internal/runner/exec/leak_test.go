package exec

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
)

// TestUnloadReleasesJournalFiles: 100 unit names loaded, run, stopped and
// unloaded one after the other leave the runner's process with the fds it
// had (each name's journal file and lock are closed on unload).
func TestUnloadReleasesJournalFiles(t *testing.T) {
	h := newHarness(t, true)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	// One warm-up unit: lazily created shared fds are not leaks.
	cycle := func(name string) {
		h.load(name, "[Service]\nType=oneshot\nExecStart=/bin/echo "+name+"\n")
		h.start(name)
		h.waitOutput(name, name)
		if err := h.r.Unload(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	cycle("warmup.service")
	before := fds()
	for i := range 100 {
		cycle(fmt.Sprintf("churn-%03d.service", i))
	}
	if after := fds(); after > before+5 {
		t.Fatalf("%d fds open after 100 units came and went, %d before: a leak per unit name", after, before)
	}
}

// procThreads is the number of OS threads of this process.
func procThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("bad %q in /proc/self/status", l)
			}
			return n
		}
	}
	t.Skip("no Threads: in /proc/self/status")
	return 0
}

func procFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// zombieChildren lists the children of this process that exited and were
// not reaped.
func zombieChildren() []int {
	var out []int
	for _, pid := range childPIDs(os.Getpid()) {
		if st, ok := readProcStat(pid); ok && st.state == 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// TestChildrenBlockNoThreads: waiting for the runner's children blocks no
// OS thread (a pidfd in the runtime's poller, not os.Process.Wait): with
// 100 long-running units up at once the process has about the threads it
// had with none, and once they are stopped and unloaded its threads and
// fds are back to where they were, and every child is reaped. Both for
// main processes under shims (as in fleetd) and started directly. The Go
// runtime keeps the threads it ever created, so each case is measured in
// a fresh test process.
func TestChildrenBlockNoThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 100 units")
	}
	if f := openPidfd(os.Getpid()); f == nil {
		t.Skip("no pidfd: the runner falls back to a thread per child")
	} else {
		f.Close()
	}
	mode := os.Getenv(threadsModeEnv)
	for _, shims := range []bool{true, false} {
		name := "direct"
		if shims {
			name = "shims"
		}
		if mode == "" {
			t.Run(name, func(t *testing.T) {
				exe, err := os.Executable()
				if err != nil {
					t.Skip(err)
				}
				cmd := osexec.Command(exe, "-test.run=^TestChildrenBlockNoThreads$", "-test.count=1", "-test.v")
				cmd.Env = append(os.Environ(), threadsModeEnv+"="+name)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				for _, l := range strings.Split(string(out), "\n") {
					if strings.Contains(l, "leak_test.go") {
						t.Log(strings.TrimSpace(l))
					}
				}
			})
			continue
		}
		if mode != name {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var h *harness
			if shims {
				h = newHarness(t, true)
			} else {
				h = newDirectHarness(t)
			}
			const n = 100
			unit := "[Service]\nExecStart=/bin/sleep 600\n"
			up := func(name string) {
				h.load(name, unit)
				h.start(name)
				h.waitState(name, "active", "running")
			}
			down := func(name string) {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				if err := h.r.Unload(ctx, name); err != nil {
					t.Fatal(err)
				}
			}
			// Warm-up: threads and fds created lazily once are not leaks.
			for i := range 3 {
				up(fmt.Sprintf("warmup-%d.service", i))
			}
			for i := range 3 {
				down(fmt.Sprintf("warmup-%d.service", i))
			}
			time.Sleep(200 * time.Millisecond)
			threads0, fds0 := procThreads(t), procFDs(t)

			for i := range n {
				up(fmt.Sprintf("long-%03d.service", i))
			}
			threadsUp, fdsUp := procThreads(t), procFDs(t)
			t.Logf("%s: %d units running: threads %d -> %d, fds %d -> %d", name, n, threads0, threadsUp, fds0, fdsUp)
			if threadsUp > threads0+20 {
				t.Errorf("%d threads with %d units running, %d with none: about a thread per child", threadsUp, n, threads0)
			}

			for i := range n {
				down(fmt.Sprintf("long-%03d.service", i))
			}
			// The waits end (and close their pidfds) just after the units
			// go down: give them a moment.
			var threads1, fds1 int
			var zombies []int
			deadline := time.Now().Add(10 * time.Second)
			for {
				threads1, fds1, zombies = procThreads(t), procFDs(t), zombieChildren()
				if (fds1 <= fds0+5 && len(zombies) == 0) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("%s: after %d units stopped and unloaded: threads %d (before %d), fds %d (before %d)", name, n, threads1, threads0, fds1, fds0)
			if threads1 > threads0+20 {
				t.Errorf("%d threads after %d units came and went, %d before", threads1, n, threads0)
			}
			if fds1 > fds0+5 {
				t.Errorf("%d fds open after %d units came and went, %d before", fds1, n, fds0)
			}
			if len(zombies) > 0 {
				t.Errorf("unreaped children: %v", zombies)
			}
		})
	}
}

// threadsModeEnv runs TestChildrenBlockNoThreads's measurement for one
// case (shims, direct) in this process.
const threadsModeEnv = "FLEET_EXEC_TEST_THREADS_MODE"

// newDirectHarness is newHarness without shims: main processes are the
// runner's own children.
func newDirectHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Journal: j, UnitsDir: filepath.Join(dir, "units"),
		Hostname: "testhost", MachineID: "machine1", BootID: "boot1",
		DisableCgroups: true,
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

// TestReaperWaitChild: rp.wait reports a managed child's exit status as
// os.Process.Wait would (exit code, signal), unlists it, and returns (no
// status) when the child was reaped behind its back.
func TestReaperWaitChild(t *testing.T) {
	rp := newReaper(func() {})
	defer rp.close()
	start := func(script string) *child {
		t.Helper()
		rp.mu.Lock()
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{
			Files: []*os.File{nil, os.Stderr, os.Stderr},
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
		if err == nil {
			rp.managed[p.Pid] = struct{}{}
		}
		rp.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		return rp.watch(p)
	}
	managed := func(pid int) bool {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		_, ok := rp.managed[pid]
		return ok
	}

	c := start("exit 7")
	if ws, ok := rp.wait(c); !ok || !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("exit 7: status %v (ok %v)", ws, ok)
	}
	if managed(c.pid) || alive(c.pid) {
		t.Errorf("exit 7: still managed or alive")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(c.pid)); err == nil {
		t.Errorf("exit 7: pid %d not reaped", c.pid)
	}

	c = start("kill -9 $$")
	if ws, ok := rp.wait(c); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("kill -9: status %v (ok %v)", ws, ok)
	}

	c = start("sleep 0.2")
	var ws syscall.WaitStatus
	if got, err := syscall.Wait4(c.pid, &ws, 0, nil); err != nil || got != c.pid {
		t.Fatalf("wait4: %d %v", got, err)
	}
	done := make(chan bool)
	go func() {
		_, ok := rp.wait(c)
		done <- ok
	}()
	select {
	case ok := <-done:
		if ok {
			t.Errorf("reaped elsewhere: a status from nowhere")
		}
	case <-time.After(patience):
		t.Fatal("rp.wait hangs on a child reaped elsewhere")
	}
	if managed(c.pid) {
		t.Errorf("reaped elsewhere: still managed")
	}
}

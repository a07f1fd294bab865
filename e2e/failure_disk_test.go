package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureDiskFull: the disk of the machine that runs etcd fills up.
// Below etcd_min_free_space (256 MB) etcd refuses writes: fleetctl, on any
// machine, exits non-zero saying which disk on which machine is full, and
// nothing is stored; meanwhile both fleetd keep running, the machines stay
// listed (lease renewals go on) and the units keep running, untouched. Once
// space is freed, writes resume by themselves.
func TestFailureDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); skipping", err, out)
	}
	// Registered before the cluster's cleanup, so it runs after it.
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })

	const ttl = 3 * time.Second
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{AgentTTL: ttl,
		Metadata: []string{"role=etcd", "role=worker"}, DataDirs: []string{dir}})
	units := t.TempDir()
	var names []string
	for _, role := range []string{"etcd", "worker"} {
		name := "disk-" + role + ".service"
		names = append(names, name)
		c.MustFleetctl("start", "--no-block", writeUnit(t, units, name,
			"[Service]\nExecStart=/bin/sh -c \"while true; do echo %n alive; sleep 1; done\"\n[X-Fleet]\nMachineMetadata=role="+role+"\n"))
	}
	// A unit that keeps restarting: its state changes cannot be published
	// while the disk is full, and the agent must keep going.
	c.MustFleetctl("start", "--no-block", writeUnit(t, units, "disk-flap.service",
		"[Service]\nExecStart=/bin/sh -c \"sleep 2; exit 1\"\nRestart=always\nRestartSec=2\n[X-Fleet]\nMachineMetadata=role=worker\n"))
	where := c.AwaitActive(60*time.Second, names...)
	pids := map[string]int{}
	for _, name := range names {
		m := c.Machines[c.MachineIndex(where[name])]
		c.Await(name+" main PID", 30*time.Second, func() (bool, string) {
			pids[name] = mainPID(m, name)
			return pids[name] > 0 && pidAlive(pids[name]), "no record"
		})
	}

	// Leave 200 MB free: below the 256 MB low-water mark.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < 340<<20 {
		t.Skipf("only %d MB free on the tmpfs after start; the test needs more than the 320 MB resume mark", free>>20)
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(free-200<<20)); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	f.Close()
	filled := time.Now()
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("filled machine 0's data dir: %d MB free", st.Bavail*uint64(st.Bsize)>>20)

	extra := writeUnit(t, units, "disk-extra.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	etcdDir := filepath.Join(dir, "etcd")
	c.Await("machine 0's fleetd warning about its disk", 30*time.Second, func() (bool, string) {
		log := c.Machines[0].Log()
		return strings.Contains(log, "nearly full") && strings.Contains(log, etcdDir), log
	})
	_, stderr, code := c.FleetctlOn(1, "submit", extra)
	t.Logf("writes refused %v after the disk was filled", time.Since(filled).Round(time.Millisecond))
	if code == 0 {
		t.Errorf("fleetctl submit while the disk is full: exit 0\n%s", stderr)
	}
	for _, want := range []string{"507", "the disk under " + etcdDir, "machine " + c.Machines[0].ID[:8], "nearly full", "MB free", "free space there"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("fleetctl submit's error lacks %q:\n%s", want, stderr)
		}
	}
	t.Logf("fleetctl submit while the disk is full:\n%s", stderr)
	// Through machine 0's API too, and for a desired-state change.
	if _, errs, code := c.FleetctlOn(0, "stop", "--no-block", names[1]); code == 0 || !strings.Contains(errs, "the disk under "+etcdDir) {
		t.Errorf("fleetctl stop while full: exit %d\n%s", code, errs)
	}
	if out, _, _ := c.Fleetctl("list-unit-files", "--no-legend"); strings.Contains(out, "disk-extra.service") {
		t.Errorf("the refused unit was stored:\n%s", out)
	}

	// Several agent_ttl with writes refused: everything keeps running.
	start := time.Now()
	for time.Since(start) < 4*ttl {
		for name, pid := range pids {
			if !pidAlive(pid) {
				t.Fatalf("%s (PID %d) stopped %v into the full disk", name, pid, time.Since(start).Round(time.Millisecond))
			}
		}
		if out, errs, code := c.Fleetctl("list-machines", "--no-legend"); code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 {
			t.Fatalf("list-machines while full: exit %d\n%s%s", code, out, errs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the agent of the restarting unit's machine failed to publish %d times while the disk was full",
		strings.Count(c.Machines[1].Log(), "database space exceeded"))
	for i := range c.Machines {
		if strings.Contains(c.Machines[i].Log(), "fleetd shutting down") {
			t.Fatalf("fleetd %d shut down while the disk was full:\n%s", i, c.Machines[i].Log())
		}
	}
	if after := c.AwaitActive(10*time.Second, names...); after[names[0]] != where[names[0]] || after[names[1]] != where[names[1]] {
		t.Errorf("units moved while the disk was full: %v, were %v", after, where)
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	c.Await("fleetctl submit accepted again", 30*time.Second, func() (bool, string) {
		_, errs, code := c.FleetctlOn(1, "submit", extra)
		return code == 0, errs
	})
	t.Logf("writes accepted %v after the disk was freed", time.Since(freed).Round(time.Millisecond))
	c.MustFleetctl("start", "--no-block", "disk-extra.service")
	c.AwaitActive(60*time.Second, "disk-extra.service")
	if !strings.Contains(c.Machines[0].Log(), "accepts writes again") {
		t.Errorf("machine 0's fleetd did not say writes resumed:\n%s", c.Machines[0].Log())
	}
	for name, pid := range pids {
		if got := mainPID(c.Machines[c.MachineIndex(where[name])], name); got != pid || !pidAlive(pid) {
			t.Errorf("%s: main PID %d, want %d (alive: %v): restarted", name, got, pid, pidAlive(pid))
		}
	}
}

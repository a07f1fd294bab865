package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// cgroupsWritable says whether this machine lets fleetd enforce limits
// (root with a writable memory and cpu hierarchy, v1 or v2).
func cgroupsWritable(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("resource limits need root (cgroups); skipping")
	}
	for _, p := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"} {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		return
	}
	t.Skip("no writable memory/cpu cgroup hierarchy here; skipping")
}

// TestResourceLimits: through fleetd, MemoryMax=30M with a 300M allocation
// ends failed (oom-kill), and CPUQuota=20% holds a busy loop to at most 25 %
// of a CPU over 5 s.
func TestResourceLimits(t *testing.T) {
	cgroupsWritable(t)
	hog := buildHelper(t, t.TempDir(), "hog", "./testdata/hog")
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	writeUnit(t, dir, "oom.service", fmt.Sprintf("[Service]\nExecStart=%s alloc 300\nMemoryMax=30M\n", hog))
	writeUnit(t, dir, "spin.service", fmt.Sprintf("[Service]\nExecStart=%s spin\nCPUQuota=20%%\n", hog))
	c.MustFleetctl("start", "--no-block", dir+"/oom.service", dir+"/spin.service")

	var status string
	c.Await("oom.service failed (oom-kill)", 60*time.Second, func() (bool, string) {
		out, errOut, _ := c.Fleetctl("status", "oom.service")
		status = out + errOut
		// The journal names the OOM kill a moment before the published
		// state says failed: wait for the state line itself.
		return strings.Contains(status, "failed (Result: oom-kill)"), status
	})
	t.Logf("fleetctl status oom.service:\n%s", status)
	if !strings.Contains(status, "failed (Result: oom-kill)") {
		t.Errorf("status does not say failed (Result: oom-kill)")
	}
	if strings.Contains(status, "allocated 300M") {
		t.Errorf("the 300M allocation succeeded despite MemoryMax=30M")
	}

	c.AwaitActive(30*time.Second, "spin.service")
	var pid int
	c.Await("spin.service's main PID", 30*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("status", "spin.service")
		m := regexp.MustCompile(`Main PID: (\d+)`).FindStringSubmatch(out)
		if m == nil {
			return false, out
		}
		pid, _ = strconv.Atoi(m[1])
		return pid > 0, out
	})
	cpu := func() float64 { // seconds of CPU used by pid (utime+stime)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("spin.service's process: %v", err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		return (ut + st) / 100 // USER_HZ
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(5 * time.Second)
	used := (cpu() - c0) / time.Since(t0).Seconds()
	t.Logf("spin.service with CPUQuota=20%%: %.1f %% of a CPU over 5 s", used*100)
	if used > 0.25 {
		t.Errorf("CPUQuota=20%% let the busy loop use %.1f %% of a CPU", used*100)
	}
	if used < 0.05 {
		t.Errorf("the busy loop used only %.1f %%: is it running?", used*100)
	}
}

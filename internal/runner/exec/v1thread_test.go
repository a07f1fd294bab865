package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startFromV1Thread puts the child, and only the child, into the v1
// cgroups: every thread of this process is back in its own cgroup
// afterwards, and the cgroup lists the child alone.
func TestStartFromV1ThreadJoinsOnlyTheChild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: v1 cgroups are only writable as root")
	}
	const hier = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(hier, "tasks")); err != nil {
		t.Skip("skipping: no v1 memory hierarchy at " + hier)
	}
	dir := filepath.Join(hier, fmt.Sprintf("fleet-v1thread-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("skipping: cannot create a v1 cgroup: %v", err)
	}
	defer os.Remove(dir)
	before := selfMemoryCgroups(t)

	for i := range 20 { // many threads, many starts: a thread left behind would show
		devnull, _ := os.Open(os.DevNull)
		p, err := startFromV1Thread(map[string]string{"memory": dir}, "/bin/sleep", []string{"sleep", "60"},
			&os.ProcAttr{Files: []*os.File{devnull, devnull, devnull}, Sys: &syscall.SysProcAttr{}})
		devnull.Close()
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		procs := strings.Fields(string(b))
		if len(procs) != 1 || procs[0] != strconv.Itoa(p.Pid) {
			t.Errorf("start %d: cgroup.procs = %v, want only the child %d", i, procs, p.Pid)
		}
		p.Kill()
		p.Wait()
	}
	if after := selfMemoryCgroups(t); after != before {
		t.Fatalf("this process's threads' memory cgroups changed:\nbefore %s\nafter  %s", before, after)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "tasks"))
		if strings.TrimSpace(string(b)) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks left in the cgroup: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// selfMemoryCgroups lists the distinct memory cgroups of this process's
// threads.
func selfMemoryCgroups(t *testing.T) string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "cgroup"))
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.SplitN(l, ":", 3); len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") {
				set[f[2]] = true
			}
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

package cgroup

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	PhysicalMemory = func() uint64 { return 8 << 30 }
	for in, want := range map[string]int64{
		"": Unset, "infinity": Infinity, "0": 0, "1024": 1024, "30M": 30 << 20, "1K": 1024,
		"2G": 2 << 30, "1T": 1 << 40, "1.5G": 3 << 29, "10MiB": 10 << 20, "10MB": 10 << 20, "512B": 512,
		"50%": 4 << 30, "25%": 2 << 30,
	} {
		got, err := ParseSize(in, true)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "-5M", "30Q", "abc", "M", "1.5", "10%%", "-10%", "1e9"} {
		if got, err := ParseSize(in, true); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	if _, err := ParseSize("50%", false); err == nil {
		t.Error("percent accepted where not allowed")
	}
}

func TestParseCPUQuotaWeightTasks(t *testing.T) {
	for in, want := range map[string]int64{"20%": 20000, "100%": 100000, "250%": 250000, "0.5%": 1000, "": Unset} {
		if got, err := ParseCPUQuota(in); err != nil || got != want {
			t.Errorf("ParseCPUQuota(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"20", "-20%", "0%", "x%", "20 %%"} {
		if _, err := ParseCPUQuota(in); err == nil {
			t.Errorf("ParseCPUQuota(%q) accepted", in)
		}
	}
	for in, want := range map[string]int64{"1": 1, "100": 100, "10000": 10000} {
		if got, err := ParseWeight(in); err != nil || got != want {
			t.Errorf("ParseWeight(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "10001", "-1", "x"} {
		if _, err := ParseWeight(in); err == nil {
			t.Errorf("ParseWeight(%q) accepted", in)
		}
	}
	for in, want := range map[string]int64{"5": 5, "infinity": Infinity} {
		if got, err := ParseTasksMax(in); err != nil || got != want {
			t.Errorf("ParseTasksMax(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1", "x"} {
		if _, err := ParseTasksMax(in); err == nil {
			t.Errorf("ParseTasksMax(%q) accepted", in)
		}
	}
	if V1Shares(100) != 1024 || V1Shares(1) != 10 || V1Shares(10000) != 102400 {
		t.Errorf("V1Shares: %d %d %d", V1Shares(100), V1Shares(1), V1Shares(10000))
	}
	if V1BlkioWeight(100) != 500 || V1BlkioWeight(1) != 10 || V1BlkioWeight(10000) != 1000 {
		t.Errorf("V1BlkioWeight: %d %d %d", V1BlkioWeight(100), V1BlkioWeight(1), V1BlkioWeight(10000))
	}
}

func TestPlan(t *testing.T) {
	l := NoLimits()
	l.MemoryMax = 30 << 20
	l.TasksMax = 5
	r := &Root{V2: "/cg/unified/x", V2Ctrl: map[string]bool{}, V1: map[string]string{
		V1Memory: "/cg/memory/x", V1Pids: "/cg/pids/x", V1Freezer: "/cg/freezer/x", V1CPU: "/cg/cpu/x", V1CPUAcct: "/cg/cpuacct/x",
	}}
	if p := r.Plan(NoLimits(), false, false); !p.V2 || len(p.V1) != 0 {
		t.Errorf("no limits: %+v, want v2 (tracking)", p)
	}
	if p := r.Plan(l, false, false); p.V2 || strings.Join(p.V1, ",") != "freezer,memory,pids" || len(p.Unenforced) != 0 {
		t.Errorf("hybrid: %+v", p)
	}
	l.IOWeight = 100
	if p := r.Plan(l, false, false); strings.Join(p.Unenforced, ",") != "IOWeight=" || !strings.Contains(p.Why, "blkio") {
		t.Errorf("no blkio: %+v", p)
	}
	r.V2Ctrl = map[string]bool{Memory: true, Pids: true, IO: true, CPU: true}
	if p := r.Plan(l, false, false); !p.V2 || len(p.V1) != 0 {
		t.Errorf("full v2: %+v", p)
	}
	if p := r.Plan(l, true, false); p.V2 {
		t.Errorf("v1 forced: %+v", p)
	}
	none := &Root{V2Ctrl: map[string]bool{}, V1: map[string]string{}}
	if p := none.Plan(l, false, false); len(p.Unenforced) != 3 {
		t.Errorf("nothing: %+v", p)
	}
}

// TestGroupV1 creates a real unit cgroup where this process may (root,
// writable hierarchies), applies limits and reads them back.
func TestGroupLive(t *testing.T) {
	sys := Detect()
	if os.Geteuid() != 0 || (sys.V2 == "" && len(sys.V1) == 0) {
		t.Skipf("skipping: no writable cgroup hierarchy (euid %d): %v", os.Geteuid(), sys.Why)
	}
	name := fmt.Sprintf("fleet-cgtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	root, err := sys.NewRoot(name, false, false)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	defer root.Remove()
	l := NoLimits()
	l.MemoryMax, l.CPUQuota, l.TasksMax, l.CPUWeight = 30<<20, 20000, 5, 200
	p := root.Plan(l, false, false)
	t.Logf("plan %+v", p)
	g, err := root.Create("u.1", p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	for _, w := range g.Apply(l) {
		t.Log("warning:", w)
	}
	if d, ok := g.V1[V1Memory]; ok && g.V2 == "" {
		b, _ := os.ReadFile(d + "/memory.limit_in_bytes")
		if strings.TrimSpace(string(b)) != fmt.Sprint(30<<20) {
			t.Errorf("memory.limit_in_bytes %q", b)
		}
		b, _ = os.ReadFile(g.V1[V1CPU] + "/cpu.cfs_quota_us")
		if strings.TrimSpace(string(b)) != "20000" {
			t.Errorf("cpu.cfs_quota_us %q", b)
		}
		b, _ = os.ReadFile(g.V1[V1CPU] + "/cpu.shares")
		if strings.TrimSpace(string(b)) != "2048" {
			t.Errorf("cpu.shares %q", b)
		}
	}
	if len(g.Procs()) != 0 {
		t.Fatalf("fresh group has processes %v", g.Procs())
	}
	if n, _ := g.OOMKills(); n != 0 {
		t.Fatalf("fresh group has %d OOM kills", n)
	}
	// A process joins, is listed, signalled and gone.
	pa := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
	pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "600"}, pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Join(pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal(err)
	}
	if got := g.Procs(); len(got) != 1 || got[0] != pid {
		t.Errorf("procs %v, want [%d]", got, pid)
	}
	g.Signal(syscall.SIGKILL)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %v", ws)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Remove() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g.Exists() {
		t.Error("group not removed")
	}
}

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureFDsAndThreadsFlat: fleetd keeps no resource per unit name it
// ever ran. One fleetd runs 450 unit names, each started and destroyed
// (sleep services under shims, and oneshot services whose processes are
// fleetd's own children): afterwards its fds and OS threads are where
// they were after a warm-up. And while 100 long-running units are up at
// once, it has far fewer threads than units: waiting for a child (a shim
// or a control process) blocks no thread.
func TestFailureFDsAndThreadsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 450 units")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	pid := fleetdPID(t, c.Machines[0])
	apiPort := c.Machines[0].APIURL[strings.LastIndexByte(c.Machines[0].APIURL, ':')+1:]
	// fds counts fleetd's fds but the API connections fleetctl keeps
	// alive: this test's in-process fleetctl runs make a client (and
	// connection) each, closed only after 90 s idle.
	fds := func() int { return procFDCount(t, pid, apiPort) }
	dir := t.TempDir()

	const (
		total = 450
		batch = 25
		long  = 100 // up at once
	)
	sleepUnit := "[Service]\nExecStart=/bin/sleep 600\n"
	oneshotUnit := "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStartPre=/bin/true\nExecStart=/bin/true\n"
	next := 0
	// names writes the next n unit files (kind sleep or oneshot) and
	// returns their paths and names.
	names := func(n int, body string) (paths, units []string) {
		for range n {
			u := fmt.Sprintf("churn-%03d.service", next)
			next++
			paths = append(paths, writeUnit(t, dir, u, body))
			units = append(units, u)
		}
		return paths, units
	}
	start := func(paths []string) {
		t.Helper()
		c.MustFleetctl(append([]string{"start", "--block-attempts", "60"}, paths...)...)
	}
	destroy := func(units []string) {
		t.Helper()
		c.MustFleetctl(append([]string{"destroy", "--block-attempts", "60"}, units...)...)
	}
	children0 := -1
	// idle waits until fleetd runs no unit (and has as many children as
	// after the warm-up: every shim and control process reaped).
	idle := func(what string) {
		t.Helper()
		c.Await(what, 90*time.Second, func() (bool, string) {
			out, _, code := c.Fleetctl("list-units", "--no-legend")
			if code != 0 || strings.TrimSpace(out) != "" {
				return false, out
			}
			kids := procChildren(pid)
			if children0 >= 0 && len(kids) > children0 {
				return false, fmt.Sprintf("fleetd children %v (%d after the warm-up)", kids, children0)
			}
			return true, ""
		})
	}

	// Warm-up: a batch of each kind, so that lazily created fds and the
	// threads a batch of concurrent starts needs exist before the
	// baseline.
	for _, body := range []string{sleepUnit, oneshotUnit} {
		paths, units := names(batch, body)
		start(paths)
		destroy(units)
	}
	idle("fleetd idle after the warm-up")
	time.Sleep(2 * time.Second) // let the last goroutines end
	children0 = len(procChildren(pid))
	fds0, threads0 := fds(), procThreadCount(t, pid)
	t.Logf("fleetd (pid %d) after the warm-up: %d fds, %d threads, %d children", pid, fds0, threads0, children0)
	began := time.Now()

	// long units up at once.
	var longUnits []string
	for len(longUnits) < long {
		paths, units := names(batch, sleepUnit)
		start(paths)
		longUnits = append(longUnits, units...)
	}
	fdsUp, threadsUp := fds(), procThreadCount(t, pid)
	t.Logf("fleetd with %d long-running units up: %d fds, %d threads, %d children", len(longUnits), fdsUp, threadsUp, len(procChildren(pid)))
	if threadsUp > threads0+long/4 {
		t.Errorf("fleetd has %d threads with %d units up, %d with none: about one per unit", threadsUp, len(longUnits), threads0)
	}
	for i := 0; i < len(longUnits); i += batch {
		destroy(longUnits[i:min(i+batch, len(longUnits))])
	}

	// The rest of the names come and go a batch at a time, alternating
	// the kinds.
	for i := 0; next < total+2*batch; i++ {
		body := sleepUnit
		if i%2 == 1 {
			body = oneshotUnit
		}
		paths, units := names(min(batch, total+2*batch-next), body)
		start(paths)
		destroy(units)
	}
	idle("fleetd idle after the churn")

	// The last units' waits and journal files close a moment after the
	// units are gone.
	var fds1, threads1 int
	deadline := time.Now().Add(20 * time.Second)
	for {
		fds1, threads1 = fds(), procThreadCount(t, pid)
		if (fds1 <= fds0+20 && threads1 <= threads0+20) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("fleetd after %d unit names started and destroyed (%v): %d fds (%d before; %d with fleetctl's idle API connections), %d threads (%d before), %d children",
		total, time.Since(began).Round(time.Second), fds1, fds0, procFDCount(t, pid, ""), threads1, threads0, len(procChildren(pid)))
	if fds1 > fds0+20 {
		t.Errorf("fleetd has %d fds after %d unit names came and went, %d before: a leak per name", fds1, total, fds0)
	}
	if threads1 > threads0+20 {
		t.Errorf("fleetd has %d threads after %d unit names came and went, %d before", threads1, total, threads0)
	}
}

// fleetdPID finds the fleetd process of m: our child whose command line
// has its --data-dir.
func fleetdPID(t *testing.T, m *testcluster.Machine) int {
	t.Helper()
	want := []byte("\x00--data-dir\x00" + m.DataDir + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		if procPPID(pid) == os.Getpid() {
			return pid
		}
	}
	t.Fatalf("no fleetd process with --data-dir %s", m.DataDir)
	return 0
}

func procPPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// procChildren lists the direct children of pid (all its threads').
func procChildren(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, w := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(w); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// procFDCount counts the fds of pid, without its established TCP
// connections on local port port (hex or decimal, "" for none).
func procFDCount(t *testing.T, pid int, port string) int {
	t.Helper()
	skip := map[string]bool{}
	if p, err := strconv.Atoi(port); err == nil {
		for _, f := range []string{"tcp", "tcp6"} {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
			for _, l := range strings.Split(string(b), "\n")[1:] {
				// sl local_address rem_address st ... uid timeout inode
				fs := strings.Fields(l)
				if len(fs) < 10 || fs[3] != "01" {
					continue
				}
				local := fs[1]
				if lp, err := strconv.ParseUint(local[strings.LastIndexByte(local, ':')+1:], 16, 16); err == nil && int(lp) == p {
					skip["socket:["+fs[9]+"]"] = true
				}
			}
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("fds of fleetd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && skip[l] {
			continue
		}
		n++
	}
	return n
}

func procThreadCount(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("threads of fleetd: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("bad %q in /proc/%d/status", l, pid)
			}
			return n
		}
	}
	t.Fatalf("no Threads: in /proc/%d/status", pid)
	return 0
}

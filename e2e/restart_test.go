package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/testcluster"
)

// Restarts and etcd outages must not restart units (fleet issues #1086,
// #1289, #1690); a machine cut off longer than agent_ttl keeps its units
// (stopping at once those with StopOnDisconnect=true) and stops the copies
// that moved as soon as contact returns. Every subtest prints what it
// measured.
func TestRestartAndPartition(t *testing.T) {
	const ttl = 4 * time.Second
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{
		Metadata:  []string{"role=etcd", "role=worker", "role=worker"},
		AgentTTL:  ttl,
		EtcdProxy: true,
	})
	dir := t.TempDir()
	unit := func(name string) string {
		xfleet := "MachineMetadata=role=worker\n"
		if strings.HasPrefix(name, "fenced") {
			xfleet += "StopOnDisconnect=true\n"
		}
		return writeUnit(t, dir, name, "[Service]\nExecStart=/bin/sh -c \"while true; do echo %n alive; sleep 0.2; done\"\n[X-Fleet]\n"+xfleet)
	}
	// startOn starts a unit and returns the machine index and main PID.
	startOn := func(c *testcluster.Cluster, name string) (int, int) {
		c.MustFleetctl("start", unit(name))
		where := c.AwaitActive(30*time.Second, name)
		i := c.MachineIndex(where[name])
		var pid int
		c.Await(name+" main PID", 30*time.Second, func() (bool, string) {
			pid = mainPID(c.Machines[i], name)
			return pid > 0 && pidAlive(pid), "no record"
		})
		return i, pid
	}
	// steady checks, after a while, that name still runs once, on machine
	// i, as pid.
	steady := func(t *testing.T, c *testcluster.Cluster, name string, i, pid int) {
		t.Helper()
		time.Sleep(2 * ttl)
		if !pidAlive(pid) {
			t.Errorf("%s: main PID %d is gone", name, pid)
		}
		if got := mainPID(c.Machines[i], name); got != pid {
			t.Errorf("%s: main PID %d, want %d (restarted)", name, got, pid)
		}
		for k, m := range c.Machines {
			n := countStarted(m, name)
			switch {
			case k == i && n != 1:
				t.Errorf("%s: %d \"Started\" lines on machine %d, want 1:\n%s", name, n, k, journalText(m, name))
			case k != i && n != 0:
				t.Errorf("%s: started on machine %d too:\n%s", name, k, journalText(m, name))
			}
		}
		where := c.AwaitActive(30*time.Second, name)
		if where[name] != c.Machines[i].ID {
			t.Errorf("%s moved to %s", name, where[name])
		}
	}

	t.Run("restart fleetd: no unit restarts", func(t *testing.T) {
		c := c.T(t)
		i, pid := startOn(c, "keep1.service")
		t0 := time.Now()
		c.Stop(i)
		stopped := time.Since(t0)
		if !pidAlive(pid) {
			t.Fatalf("the unit died with fleetd (SIGTERM)")
		}
		c.Restart(i)
		up := time.Since(t0)
		c.Await("adoption", 30*time.Second, func() (bool, string) {
			return strings.Contains(c.Machines[i].Log(), "machine lease taken over"), c.Machines[i].Log()
		})
		t.Logf("machine %d: fleetd stopped in %v, API back after %v, lease taken over after %v; unit PID %d kept",
			i, stopped, up, time.Since(t0), pid)
		steady(t, c, "keep1.service", i, pid)
		c.MustFleetctl("destroy", "keep1.service")
	})

	t.Run("kill -9 fleetd and restart within agent_ttl: no unit restarts", func(t *testing.T) {
		c := c.T(t)
		i, pid := startOn(c, "keep2.service")
		t0 := time.Now()
		c.Kill(i)
		if !pidAlive(pid) {
			t.Fatalf("the unit died with fleetd (SIGKILL)")
		}
		before := countOutput(c.Machines[i], "keep2.service")
		time.Sleep(ttl / 4)
		if after := countOutput(c.Machines[i], "keep2.service"); after <= before {
			t.Errorf("no output captured while fleetd was dead (%d lines before, %d after)", before, after)
		}
		c.Restart(i)
		c.Await("adoption", 30*time.Second, func() (bool, string) {
			return strings.Contains(c.Machines[i].Log(), "machine lease taken over"), c.Machines[i].Log()
		})
		t.Logf("machine %d: fleetd killed and back in %v (agent_ttl %v); unit PID %d kept", i, time.Since(t0), ttl, pid)
		steady(t, c, "keep2.service", i, pid)
		c.MustFleetctl("destroy", "keep2.service")
	})

	t.Run("etcd unreachable for less than agent_ttl: nothing moves or restarts", func(t *testing.T) {
		c := c.T(t)
		i, pid := startOn(c, "keep3.service")
		t0 := time.Now()
		c.PauseEtcd(i)
		time.Sleep(ttl / 2)
		c.ResumeEtcd(i)
		t.Logf("machine %d cut off etcd for %v (agent_ttl %v)", i, time.Since(t0), ttl)
		if strings.Contains(c.Machines[i].Log(), "machine lease lost") {
			t.Errorf("machine %d lost its lease in a short outage:\n%s", i, c.Machines[i].Log())
		}
		steady(t, c, "keep3.service", i, pid)
		c.MustFleetctl("destroy", "keep3.service")
	})

	t.Run("etcd unreachable longer than agent_ttl: the isolated copy of a StopOnDisconnect unit stops", func(t *testing.T) {
		c := c.T(t)
		const name = "fenced.service"
		i, pid := startOn(c, name)
		t0 := time.Now()
		c.PauseEtcd(i)
		var oldGone, newUp time.Duration
		newPID, j := 0, -1
		for time.Since(t0) < 60*time.Second && (oldGone == 0 || newUp == 0) {
			if oldGone == 0 && !pidAlive(pid) {
				oldGone = time.Since(t0)
			}
			if newUp == 0 {
				for k, m := range c.Machines {
					if k == i {
						continue
					}
					if p := mainPID(m, name); p > 0 && pidAlive(p) {
						newUp, newPID, j = time.Since(t0), p, k
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if oldGone == 0 || newUp == 0 {
			t.Fatalf("after %v: old copy gone at %v, new copy up at %v", time.Since(t0), oldGone, newUp)
		}
		t.Logf("machine %d cut off etcd: its copy (PID %d) stopped after %v; the new copy (PID %d on machine %d) was up after %v (agent_ttl %v); overlap %v",
			i, pid, oldGone, newPID, j, newUp, ttl, max(0, oldGone-newUp))
		// The old copy is stopped when the lease is lost, about agent_ttl
		// after the cut; the new one cannot start before the lease
		// expired. A little slack for a loaded machine.
		if oldGone > newUp+time.Second {
			t.Errorf("two copies ran for %v", oldGone-newUp)
		}
		startedBefore := countStarted(c.Machines[i], name)
		c.ResumeEtcd(i)
		t1 := time.Now()
		c.AwaitMachines(3)
		t.Logf("machine %d back in the cluster %v after etcd came back", i, time.Since(t1))
		time.Sleep(2 * ttl)
		if n := countStarted(c.Machines[i], name); n != startedBefore {
			t.Errorf("machine %d started its stale copy again:\n%s", i, journalText(c.Machines[i], name))
		}
		if p := mainPID(c.Machines[i], name); p > 0 && pidAlive(p) {
			t.Errorf("machine %d runs %s again (PID %d)", i, name, p)
		}
		if !pidAlive(newPID) {
			t.Errorf("the new copy (PID %d) is gone", newPID)
		}
		where := c.AwaitActive(30*time.Second, name)
		if where[name] != c.Machines[j].ID {
			t.Errorf("%s on %s, want machine %d", name, where[name], j)
		}
		c.MustFleetctl("destroy", name)
	})

	t.Run("etcd unreachable longer than agent_ttl: a unit keeps running, and its moved copy stops as soon as contact returns", func(t *testing.T) {
		c := c.T(t)
		const name = "moved.service"
		i, pid := startOn(c, name)
		t0 := time.Now()
		c.PauseEtcd(i)
		// The cluster moves the unit; the cut-off machine keeps its copy
		// (losing etcd is not proof that the unit moved).
		newPID, j := 0, -1
		c.Await(name+" up on another machine", 60*time.Second, func() (bool, string) {
			for k, m := range c.Machines {
				if k == i {
					continue
				}
				if p := mainPID(m, name); p > 0 && pidAlive(p) {
					newPID, j = p, k
					return true, ""
				}
			}
			return false, "not yet"
		})
		if !pidAlive(pid) {
			t.Fatalf("machine %d stopped its copy (PID %d) while cut off; it should keep running:\n%s", i, pid, c.Machines[i].Log())
		}
		t.Logf("machine %d cut off etcd: the new copy (PID %d on machine %d) was up after %v; the old one (PID %d) still runs", i, newPID, j, time.Since(t0), pid)
		c.ResumeEtcd(i)
		t1 := time.Now()
		c.Await("the stale copy stopped", 60*time.Second, func() (bool, string) {
			return !pidAlive(pid), "still running"
		})
		t.Logf("machine %d: its stale copy stopped %v after etcd came back", i, time.Since(t1))
		c.AwaitMachines(3)
		time.Sleep(2 * ttl)
		if p := mainPID(c.Machines[i], name); p > 0 && pidAlive(p) {
			t.Errorf("machine %d runs %s again (PID %d)", i, name, p)
		}
		if !pidAlive(newPID) {
			t.Errorf("the new copy (PID %d) is gone", newPID)
		}
		c.MustFleetctl("destroy", name)
	})

	t.Run("drain moves units away, undrain lets them back", func(t *testing.T) {
		c := c.T(t)
		const name = "drained.service"
		i, pid := startOn(c, name)
		t0 := time.Now()
		c.MustFleetctl("drain", c.Machines[i].ID[:12])
		if out := c.MustFleetctl("list-machines", "--full"); !strings.Contains(out, "draining=true") {
			t.Errorf("list-machines does not show the drain:\n%s", out)
		}
		var where map[string]string
		c.Await(name+" off the drained machine", 60*time.Second, func() (bool, string) {
			where = c.AwaitActive(30*time.Second, name)
			return where[name] != c.Machines[i].ID && !pidAlive(pid), where[name]
		})
		j := c.MachineIndex(where[name])
		t.Logf("drain of machine %d: %s active on machine %d after %v", i, name, j, time.Since(t0))
		c.MustFleetctl("undrain", c.Machines[i].ID)
		c.MustFleetctl("drain", c.Machines[j].ID)
		t1 := time.Now()
		c.Await(name+" back on the undrained machine", 60*time.Second, func() (bool, string) {
			where = c.AwaitActive(30*time.Second, name)
			return where[name] == c.Machines[i].ID, where[name]
		})
		t.Logf("undrain of machine %d and drain of machine %d: %s back on machine %d after %v", i, j, name, i, time.Since(t1))
		c.MustFleetctl("undrain", c.Machines[j].ID)
		if out := c.MustFleetctl("list-machines", "--full"); strings.Contains(out, "draining") {
			t.Errorf("list-machines still shows a drain:\n%s", out)
		}
		c.MustFleetctl("destroy", name)
	})
}

// mainPID is the main PID the machine's runner recorded for a running unit
// (0 if none).
func mainPID(m *testcluster.Machine, unit string) int {
	b, err := os.ReadFile(filepath.Join(m.DataDir, "runner", unit, "unit.json"))
	if err != nil {
		return 0
	}
	var rec struct {
		MainPID int `json:"mainPID"`
	}
	if json.Unmarshal(b, &rec) != nil {
		return 0
	}
	return rec.MainPID
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

func journalEntries(m *testcluster.Machine, unit string) []journal.Entry {
	j, err := journal.Open(filepath.Join(m.DataDir, "journal"), journal.Options{})
	if err != nil {
		return nil
	}
	defer j.Close()
	es, _ := j.Tail(unit, 0)
	return es
}

func countStarted(m *testcluster.Machine, unit string) int {
	n := 0
	for _, e := range journalEntries(m, unit) {
		if e.Stream == journal.StreamFleet && strings.HasPrefix(e.Line, "Started ") {
			n++
		}
	}
	return n
}

func countOutput(m *testcluster.Machine, unit string) int {
	n := 0
	for _, e := range journalEntries(m, unit) {
		if e.Stream != journal.StreamFleet {
			n++
		}
	}
	return n
}

func journalText(m *testcluster.Machine, unit string) string {
	var b strings.Builder
	for _, e := range journalEntries(m, unit) {
		s, _ := journal.Format(e, "short-precise")
		b.WriteString(s + "\n")
	}
	return b.String()
}

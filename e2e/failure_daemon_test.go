package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestFailureSIGTERMWithoutEtcd: a fleetd whose etcd is gone (its machine
// was killed) still ends on SIGTERM within its stop timeout, and its retry
// logs name the etcd it cannot reach.
func TestFailureSIGTERMWithoutEtcd(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{})
	c.Kill(0) // the embedded etcd goes with it
	// Let machine 1 notice: its lease renewals and watches fail.
	time.Sleep(4 * time.Second)
	start := time.Now()
	if !c.Terminate(1, 45*time.Second) {
		t.Fatalf("fleetd did not exit within 45 s of SIGTERM without etcd:\n%s", c.Machines[1].Log())
	}
	t.Logf("fleetd exited %v after SIGTERM (etcd gone)", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(c.Machines[1].Log(), c.EtcdURL) {
		t.Errorf("no log line names the unreachable etcd %s:\n%s", c.EtcdURL, c.Machines[1].Log())
	}
}

// TestFailureEtcdOutageKeepsUnits: the only etcd member is frozen (SIGSTOP
// of the fleetd that embeds it, which runs no units) for 15 s, five times
// agent_ttl: every other machine loses contact with etcd and every lease
// lapses, yet no unit stops, restarts or moves (fleet issues #1289, #1690).
// (A frozen fleetd cannot be told from a dead one: its own units' shims
// stop them after agent_ttl, so the units run on the other machines.)
func TestFailureEtcdOutageKeepsUnits(t *testing.T) {
	const ttl = 3 * time.Second
	c := testcluster.New(t, fleetdBin, 4, testcluster.Options{AgentTTL: ttl,
		Metadata: []string{"role=etcd", "role=worker", "role=worker", "role=worker"}})
	dir := t.TempDir()
	var names []string
	for i := 1; i <= 3; i++ {
		name := "outage" + strconv.Itoa(i) + ".service"
		names = append(names, name)
		c.MustFleetctl("start", "--no-block", writeUnit(t, dir, name,
			"[Service]\nExecStart=/bin/sh -c \"while true; do echo %n alive; sleep 0.2; done\"\n[X-Fleet]\nConflicts=outage*.service\nMachineMetadata=role=worker\n"))
	}
	where := c.AwaitActive(60*time.Second, names...)
	pids := map[string]int{}
	for _, name := range names {
		m := c.Machines[c.MachineIndex(where[name])]
		c.Await(name+" main PID", 30*time.Second, func() (bool, string) {
			pids[name] = mainPID(m, name)
			return pids[name] > 0 && pidAlive(pids[name]), "no record"
		})
	}
	c.Freeze(0)
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		for name, pid := range pids {
			if !pidAlive(pid) {
				c.Thaw(0)
				t.Fatalf("%s (PID %d) stopped %v into the etcd outage", name, pid, time.Since(start).Round(time.Millisecond))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Thaw(0)
	t.Logf("etcd frozen for %v (agent_ttl %v); every unit kept running", time.Since(start).Round(time.Millisecond), ttl)
	c.AwaitMachines(4)
	time.Sleep(3 * ttl) // let the engine and agents settle
	after := c.AwaitActive(60*time.Second, names...)
	for _, name := range names {
		if after[name] != where[name] {
			t.Errorf("%s moved from %s to %s", name, where[name], after[name])
		}
		m := c.Machines[c.MachineIndex(after[name])]
		if got := mainPID(m, name); got != pids[name] || !pidAlive(pids[name]) {
			t.Errorf("%s: main PID %d, want %d (alive: %v): restarted", name, got, pids[name], pidAlive(pids[name]))
		}
	}
}

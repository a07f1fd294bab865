package multihost

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// seed000Plain is seed 000's test.service for a machine without Docker
// (the fleetd containers): the busybox loop run by the machine's own
// busybox, the docker kill/rm/pull pre-steps kept as failing/succeeding
// commands.
const seed000Plain = `[Unit]
Description=MyTestApp

[Service]
TimeoutStartSec=0
ExecStartPre=-/bin/sh -c "echo docker kill busybox1; exit 1"
ExecStartPre=-/bin/sh -c "echo docker rm busybox1; exit 1"
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"
`

// One cluster of fleetd containers, each with its own IP on a private
// network: m1-m3 bootstrap one etcd cluster of embedded members (static),
// m5 is an agent only, m4 is added as a fourth etcd member at run time.
// Then the failure tests, one after the other on the same cluster, each
// healing what it broke: kill -9, partition, etcd leader loss.
func testMultiHost(t *testing.T, a *artifacts) {
	const ttl = 5 * time.Second
	c := newHostCluster(t, a, ttl)
	m1, m2, m3 := c.newHost(1, true), c.newHost(2, true), c.newHost(3, true)
	m4, m5 := c.newHost(4, true), c.newHost(5, false)
	c.setDown(m4, true) // not started yet
	c.setDown(m5, true)

	start := time.Now()
	initial := c.initialCluster([]*host{m1, m2, m3})
	for _, h := range []*host{m1, m2, m3} {
		c.run(h, "FLEET_ETCD_INITIAL_CLUSTER="+initial, "FLEET_ETCD_INITIAL_CLUSTER_STATE=new")
	}
	c.awaitMachines(90 * time.Second)
	t.Logf("TIME bootstrap: 3 fleetd containers with a 3-member embedded etcd (static) listed by every machine after %v",
		time.Since(start).Round(time.Millisecond))

	ok := t.Run("seed000", func(t *testing.T) {
		c := *c
		c.t = t
		dir := t.TempDir()
		path := dir + "/test.service"
		if err := writeFile(path, seed000Plain); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.mustFctl("start", path)
		where, _ := c.awaitActive(60*time.Second, []string{"test.service"})
		on := where["test.service"]
		t.Logf("TIME test.service active on %s (%s) %v after fleetctl start", on.Name, on.IP, time.Since(start).Round(time.Millisecond))
		// Status and journal from every machine, no SSH: each fleetd
		// fetches them from the machine that runs the unit.
		for _, h := range c.up() {
			var status string
			c.await("status test.service from "+h.Name, 30*time.Second, func() (bool, string) {
				out, errOut, code := c.fleetctl(h, "status", "test.service")
				status = out
				return code == 0 && strings.Count(out, "Hello World\n") >= 2, out + errOut
			})
			if !regexp.MustCompile(`(?m)^\s+Active: active \(running\)`).MatchString(status) {
				t.Errorf("status from %s lacks Active: active (running):\n%s", h.Name, status)
			}
			if !strings.Contains(status, " "+on.Name+" ") {
				t.Errorf("status from %s: journal lines do not come from %s:\n%s", h.Name, on.Name, status)
			}
			if strings.Contains(strings.ToLower(status), "ssh") {
				t.Errorf("status mentions SSH:\n%s", status)
			}
			c.await("journal test.service from "+h.Name, 30*time.Second, func() (bool, string) {
				out, _, _ := c.fleetctl(h, "journal", "test.service")
				return strings.Count(out, "Hello World") >= 2, out
			})
		}
		// fleetctl inside a machine that does not run it (unix socket).
		other := m1
		if on == m1 {
			other = m2
		}
		out := mustDocker(t, "exec", other.CName, "fleetctl", "status", "test.service")
		if !strings.Contains(out, "Hello World") {
			t.Errorf("fleetctl status inside %s:\n%s", other.Name, out)
		}
		t.Logf("fleetctl status test.service inside %s (unit on %s):\n%s", other.Name, on.Name, out)
	})
	if !ok {
		t.FailNow()
	}

	ok = t.Run("member-add", func(t *testing.T) {
		c := *c
		c.t = t
		// m5 joins as an agent only (the members' https client URLs and
		// the cluster token), m4 as a fourth etcd member: announced
		// through the running cluster, started with the grown initial
		// cluster and state "existing" that `fleetd etcd member-add` prints.
		// member-add runs in m1, where it reaches the member on loopback
		// and logs in with FLEET_CLUSTER_TOKEN_FILE.
		start := time.Now()
		c.run(m5, "FLEET_ETCD_SERVERS="+etcdServers(m1, m2, m3))
		c.setDown(m5, false)
		start4 := time.Now()
		env := mustDocker(t, "exec", m1.CName, "fleetd", "etcd", "member-add",
			"--name", m4.Name, "--peer-url", m4.etcdPeerURL(), "--env")
		t.Logf("fleetd etcd member-add (in %s) after %v printed:\n%s", m1.Name, time.Since(start4).Round(time.Millisecond), env)
		if !strings.Contains(env, "FLEET_ETCD_INITIAL_CLUSTER_STATE=existing") ||
			!strings.Contains(env, "m4="+m4.etcdPeerURL()) {
			t.Fatalf("member-add output:\n%s", env)
		}
		c.run(m4, strings.Fields(env)...)
		c.setDown(m4, false)
		c.awaitMachines(90 * time.Second)
		t.Logf("TIME m4 (new etcd member) and m5 (agent) listed by every machine after %v (member-add to listed: %v)",
			time.Since(start).Round(time.Millisecond), time.Since(start4).Round(time.Millisecond))
		list := mustDocker(t, "exec", m4.CName, "fleetd", "etcd", "member-list")
		t.Logf("etcd members, asked in m4:\n%s", list)
		for _, h := range []*host{m1, m2, m3, m4} {
			if !regexp.MustCompile(`(?m)\s` + h.Name + `\s+` + regexp.QuoteMeta(h.etcdPeerURL()) + `\s`).MatchString(list) {
				t.Errorf("member-list lacks started member %s:\n%s", h.Name, list)
			}
		}
		if strings.Contains(list, "(not started)") || strings.Contains(list, m5.IP) {
			t.Errorf("member-list:\n%s", list)
		}
	})
	if !ok {
		t.FailNow()
	}

	if testing.Short() {
		t.Skip("-short: skipping the failure tests")
	}
	ok = t.Run("kill-9", func(t *testing.T) {
		c := *c
		c.t = t
		failKill(t, &c)
	})
	if ok {
		ok = t.Run("partition", func(t *testing.T) {
			c := *c
			c.t = t
			failPartition(t, &c)
		})
	}
	if ok {
		t.Run("kill-etcd-leader", func(t *testing.T) {
			c := *c
			c.t = t
			failLeader(t, &c)
		})
	}
}

// assertOneCopy checks that each unit started by startMarked runs exactly
// once across every container.
func assertOneCopy(t *testing.T, c *hostCluster) {
	t.Helper()
	c.mu.Lock()
	marks := slices.Sorted(maps.Keys(c.marks))
	c.mu.Unlock()
	procs := c.processes()
	for _, m := range marks {
		if n, per := count(procs, m); n != 1 {
			t.Errorf("%s: %d copies running, want 1: %v", m, n, per)
		}
	}
}

func startMarked(t *testing.T, c *hostCluster, unit, mark string) *host {
	t.Helper()
	return startMarkedOn(t, c, unit, mark, "")
}

// startMarkedOn starts a marked unit with a MachineMetadata= constraint
// (none if empty) and returns where it runs.
func startMarkedOn(t *testing.T, c *hostCluster, unit, mark, metadata string) *host {
	t.Helper()
	body := markUnit(unit, mark)
	if metadata != "" {
		body += "\n[X-Fleet]\nMachineMetadata=" + metadata + "\n"
	}
	path := c.writeUnit(unit, body)
	c.mu.Lock()
	c.marks[mark] = true
	c.mu.Unlock()
	c.mustFctl("start", "--no-block", path)
	where, _ := c.awaitActive(60*time.Second, []string{unit})
	c.await(mark+" running once", 30*time.Second, func() (bool, string) {
		n, per := c.copies(mark)
		return n == 1, fmt.Sprint(per)
	})
	return where[unit]
}

// kill -9 the machine that runs a unit: the unit is active elsewhere within
// about agent_ttl. The machine comes back with `docker start`.
func failKill(t *testing.T, c *hostCluster) {
	victim := startMarked(t, c, "victim.service", "fleet-mark-victim")
	t0 := time.Now()
	mustDocker(t, "kill", "-s", "KILL", victim.CName)
	c.setDown(victim, true)
	killed := time.Since(t0)
	where, moved := c.awaitActive(90*time.Second, []string{"victim.service"}, victim)
	moved += killed
	gone := c.awaitMachines(60*time.Second) + moved
	t.Logf("TIME kill -9 %s (%s): victim.service active on %s after %v; %s left list-machines after %v (agent_ttl %v)",
		victim.Name, victim.IP, where["victim.service"].Name, moved.Round(time.Millisecond), victim.Name, gone.Round(time.Millisecond), c.ttl)
	assertOneCopy(t, c)

	t1 := time.Now()
	mustDocker(t, "start", victim.CName)
	c.setDown(victim, false)
	c.awaitMachines(90 * time.Second)
	t.Logf("TIME %s back (docker start, same data) after %v", victim.Name, time.Since(t1).Round(time.Millisecond))
	time.Sleep(c.ttl)
	assertOneCopy(t, c)
}

// Disconnect the machine that runs a unit from the network: the unit runs
// elsewhere, and the isolated machine stops its own copy when it loses its
// lease. Reconnected, it rejoins without a second copy.
func failPartition(t *testing.T, c *hostCluster) {
	const mark = "fleet-mark-part"
	// On a machine with an etcd member (there are four), which then
	// becomes the etcd leader: the hardest case.
	// StopOnDisconnect=true: the isolated copy must stop before the unit
	// starts elsewhere (never two copies). Without it, the isolated copy
	// runs on until contact returns (the default disconnect policy).
	x := startMarkedOn(t, c, "part.service", mark, "role=etcd\nStopOnDisconnect=true")
	if err := c.moveEtcdLeader(x); err != nil {
		t.Fatalf("moving the etcd leader to %s: %v", x.Name, err)
	}
	if l, err := c.etcdLeader(); err == nil {
		t.Logf("partitioning %s; the etcd leader is %s", x.Name, l.Name)
	}
	c.mu.Lock()
	marks := slices.Sorted(maps.Keys(c.marks))
	c.mu.Unlock()
	before := c.processes()
	t0 := time.Now()
	mustDocker(t, "network", "disconnect", "-f", c.net, x.CName)
	c.setDown(x, true)
	var moved, stopped, overlap time.Duration
	var movedTo *host
	maxCopies := 0
	lastUnits, lastMachines := "", ""
	c.await("part.service moved and the isolated copy stopped", 90*time.Second, func() (bool, string) {
		if moved == 0 {
			where, out := c.placement(c.up()[0])
			if h := where["part.service"]; h != nil && h != x {
				moved, movedTo = time.Since(t0), h
			}
			ms, _, _ := c.fctl("list-machines", "--no-legend")
			if out != lastUnits || ms != lastMachines {
				t.Logf("+%v list-units:\n%slist-machines:\n%s", time.Since(t0).Round(time.Millisecond), out, ms)
				lastUnits, lastMachines = out, ms
			}
		}
		n, per := c.copies(mark)
		maxCopies = max(maxCopies, n)
		if stopped == 0 && per[x.Name] == 0 {
			stopped = time.Since(t0)
		}
		if n > 1 {
			overlap = time.Since(t0)
		}
		return moved != 0 && stopped != 0 && n == 1, fmt.Sprintf("moved %v stopped %v copies %v", moved, stopped, per)
	})
	t.Logf("TIME partition %s (%s, docker network disconnect): isolated copy stopped after %v; part.service active on %s after %v; most copies seen at once: %d (agent_ttl %v)",
		x.Name, x.IP, stopped.Round(time.Millisecond), movedTo.Name, moved.Round(time.Millisecond), maxCopies, c.ttl)
	if overlap > 0 {
		t.Logf("two copies were seen until %v after the partition", overlap.Round(time.Millisecond))
	}
	if overlap > c.ttl*2 {
		t.Errorf("two copies of part.service still ran %v after the partition (agent_ttl %v)", overlap, c.ttl)
	}
	gone := c.awaitMachines(120*time.Second) + time.Since(t0)
	t.Logf("TIME %s left list-machines (seen from the others) after about %v", x.Name, gone.Round(time.Millisecond))
	if r := restarted(before, c.processes(), marks, x); len(r) > 0 {
		t.Logf("FINDING: units on machines that were not partitioned were stopped or restarted:\n%s", strings.Join(r, "\n"))
	}

	t1 := time.Now()
	mustDocker(t, "network", "connect", "--ip", x.IP, c.net, x.CName)
	c.setDown(x, false)
	c.awaitMachines(90 * time.Second)
	t.Logf("TIME %s reconnected: listed again after %v", x.Name, time.Since(t1).Round(time.Millisecond))
	time.Sleep(c.ttl)
	assertOneCopy(t, c)
}

// Kill the etcd leader's machine: scheduling goes on (a new unit is
// accepted and placed, the dead machine's units move), and every desired
// unit is still there.
func failLeader(t *testing.T, c *hostCluster) {
	const mark = "fleet-mark-leader"
	// Four more units first, so that (least loaded first) every machine,
	// the leader too, most likely runs something that has to move.
	spread := c.writeUnit("spread@.service", markUnit("spread %i", "fleet-mark-spread-%i"))
	c.mustFctl("submit", spread)
	var spreadUnits []string
	c.mu.Lock()
	for i := 1; i <= 4; i++ {
		spreadUnits = append(spreadUnits, fmt.Sprintf("spread@%d.service", i))
		c.marks[fmt.Sprintf("fleet-mark-spread-%d ", i)] = true
	}
	c.mu.Unlock()
	c.mustFctl(append([]string{"start", "--no-block"}, spreadUnits...)...)
	c.awaitActive(60*time.Second, spreadUnits)
	before := c.mustFctl("list-unit-files", "--no-legend", "--full")
	var leader *host
	c.await("an etcd leader", 30*time.Second, func() (bool, string) {
		var err error
		leader, err = c.etcdLeader()
		return err == nil, fmt.Sprint(err)
	})
	where, _ := c.placement(c.up()[0])
	var onLeader []string
	var running []string
	for u, h := range where {
		running = append(running, u)
		if h == leader {
			onLeader = append(onLeader, u)
		}
	}
	t.Logf("etcd leader: %s (%s); its units: %v", leader.Name, leader.IP, onLeader)
	path := c.writeUnit("after-leader.service", markUnit("after-leader.service", mark))
	c.mu.Lock()
	c.marks[mark] = true
	c.mu.Unlock()

	c.mu.Lock()
	marks := slices.Sorted(maps.Keys(c.marks))
	c.mu.Unlock()
	procs := c.processes()
	t0 := time.Now()
	mustDocker(t, "kill", "-s", "KILL", leader.CName)
	c.setDown(leader, true)
	var newLeader *host
	c.await("a new etcd leader", 60*time.Second, func() (bool, string) {
		h, err := c.etcdLeader()
		if err != nil || h == leader {
			return false, fmt.Sprint(h, err)
		}
		newLeader = h
		return true, ""
	})
	elected := time.Since(t0)
	c.await("fleetctl start accepted", 60*time.Second, func() (bool, string) {
		out, errOut, code := c.fctl("start", "--no-block", path)
		return code == 0, out + errOut
	})
	accepted := time.Since(t0)
	_, _ = c.awaitActive(90*time.Second, []string{"after-leader.service"}, leader)
	placed := time.Since(t0)
	_, _ = c.awaitActive(90*time.Second, running, leader)
	allBack := time.Since(t0)
	t.Logf("TIME kill -9 etcd leader %s: new leader %s after %v; fleetctl start accepted after %v; new unit active after %v; all %d running units (%d were on %s) active after %v",
		leader.Name, newLeader.Name, elected.Round(time.Millisecond), accepted.Round(time.Millisecond),
		placed.Round(time.Millisecond), len(running), len(onLeader), leader.Name, allBack.Round(time.Millisecond))

	after := c.mustFctl("list-unit-files", "--no-legend", "--full")
	for _, l := range strings.Split(strings.TrimSpace(before), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f[0]) + `\s+\S+\s+` + f[2] + `\s`).MatchString(after) {
			t.Errorf("desired state of %s lost: before %q; after:\n%s", f[0], l, after)
		}
	}
	assertOneCopy(t, c)
	if r := restarted(procs, c.processes(), marks, leader); len(r) > 0 {
		t.Logf("FINDING: units on surviving machines were stopped or restarted:\n%s", strings.Join(r, "\n"))
	}

	t1 := time.Now()
	mustDocker(t, "start", leader.CName)
	c.setDown(leader, false)
	c.awaitMachines(90 * time.Second)
	t.Logf("TIME %s back after %v", leader.Name, time.Since(t1).Round(time.Millisecond))
	time.Sleep(c.ttl)
	assertOneCopy(t, c)
}

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// Three fleetd on one host, two joined to the first's embedded etcd.
func TestThreeMachines(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{
		Metadata: []string{
			"region=us-east,disk=ssd",
			"region=us-west,disk=ssd,role=worker",
			"region=us-east,disk=hdd,role=worker",
		},
		AgentTTL: 3 * time.Second,
	})
	dir := t.TempDir()
	loop := `ExecStart=/bin/sh -c "while true; do echo %n alive; sleep 1; done"`

	t.Run("list-machines", func(t *testing.T) {
		c := c.T(t)
		out := c.MustFleetctl("list-machines", "--full")
		for _, m := range c.Machines {
			if !strings.Contains(out, m.ID) {
				t.Errorf("list-machines lacks %s:\n%s", m.ID, out)
			}
		}
		if !strings.Contains(out, "disk=hdd,region=us-east,role=worker") {
			t.Errorf("metadata not sorted/shown:\n%s", out)
		}
	})

	t.Run("conflicts", func(t *testing.T) {
		c := c.T(t)
		writeUnit(t, dir, "web@.service", "[Unit]\nDescription=web %i\n[Service]\n"+loop+"\n[X-Fleet]\nConflicts=web@*.service\n")
		c.MustFleetctl("submit", dir+"/web@.service")
		args := []string{"start", "--no-block"}
		for i := 1; i <= 4; i++ {
			args = append(args, fmt.Sprintf("%s/web@%d.service", dir, i))
		}
		c.MustFleetctl(args...)
		where := c.AwaitActive(20*time.Second, "web@1.service", "web@2.service", "web@3.service")
		machines := map[string]bool{}
		for _, m := range where {
			machines[m] = true
		}
		if len(machines) != 3 {
			t.Errorf("3 conflicting instances on %d machines: %v", len(machines), where)
		}
		var status string
		c.Await("web@4 reason", 10*time.Second, func() (bool, string) {
			out, errOut, _ := c.Fleetctl("status", "web@4.service")
			status = out + errOut
			return strings.Contains(status, "conflict"), status
		})
		if !strings.Contains(status, "web@") {
			t.Errorf("reason does not name the conflicting unit: %s", status)
		}
		out := c.MustFleetctl("list-unit-files", "--no-legend")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "web@4.service") && !strings.HasSuffix(strings.TrimSpace(line), "-") {
				t.Errorf("web@4 should be unscheduled: %q", line)
			}
		}
		c.MustFleetctl("destroy", "web@1.service", "web@2.service", "web@3.service", "web@4.service", "web@.service")
	})

	t.Run("spread", func(t *testing.T) {
		c := c.T(t)
		writeUnit(t, dir, "app@.service", "[Service]\n"+loop+"\n")
		args := []string{"start", "--no-block"}
		var names []string
		for i := 1; i <= 10; i++ {
			n := fmt.Sprintf("app@%02d.service", i)
			names = append(names, n)
			args = append(args, dir+"/"+n)
		}
		c.MustFleetctl(args...)
		where := c.AwaitActive(30*time.Second, names...)
		per := map[string]int{}
		for _, n := range names {
			per[where[n]]++
		}
		counts := []int{}
		for _, n := range per {
			counts = append(counts, n)
		}
		slices.Sort(counts)
		if len(counts) != 3 || counts[0] != 3 || counts[2] != 4 {
			t.Errorf("10 units over 3 machines: %v", per)
		}
		c.MustFleetctl(append([]string{"destroy"}, names...)...)
	})

	t.Run("machineof", func(t *testing.T) {
		c := c.T(t)
		writeUnit(t, dir, "db.service", "[Service]\n"+loop+"\n")
		writeUnit(t, dir, "dbhelper.service", "[Service]\n"+loop+"\n[X-Fleet]\nMachineOf=db.service\n")
		c.MustFleetctl("start", dir+"/db.service", dir+"/dbhelper.service")
		where := c.AwaitActive(20*time.Second, "db.service", "dbhelper.service")
		if where["db.service"] != where["dbhelper.service"] {
			t.Errorf("MachineOf: db on %s, dbhelper on %s", where["db.service"], where["dbhelper.service"])
		}
		c.MustFleetctl("destroy", "db.service", "dbhelper.service")
	})

	t.Run("metadata", func(t *testing.T) {
		c := c.T(t)
		// AND over keys: region=us-east AND disk=hdd selects machine 2 only.
		writeUnit(t, dir, "and.service", "[Service]\n"+loop+"\n[X-Fleet]\nMachineMetadata=region=us-east\nMachineMetadata=disk=hdd\n")
		// OR within a key: region=us-west OR region=nowhere selects machine 1.
		writeUnit(t, dir, "or.service", "[Service]\n"+loop+"\n[X-Fleet]\nMachineMetadata=\"region=us-west\" \"region=nowhere\"\n")
		c.MustFleetctl("start", dir+"/and.service", dir+"/or.service")
		where := c.AwaitActive(20*time.Second, "and.service", "or.service")
		if where["and.service"] != c.Machines[2].ID {
			t.Errorf("and.service on %s, want machine 2 %s", where["and.service"], c.Machines[2].ID)
		}
		if where["or.service"] != c.Machines[1].ID {
			t.Errorf("or.service on %s, want machine 1 %s", where["or.service"], c.Machines[1].ID)
		}
		c.MustFleetctl("destroy", "and.service", "or.service")
	})

	t.Run("global", func(t *testing.T) {
		c := c.T(t)
		writeUnit(t, dir, "glob.service", "[Service]\n"+loop+"\n[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n")
		out := c.MustFleetctl("start", dir+"/glob.service")
		if !strings.Contains(out, "Triggered global unit glob.service start") {
			t.Errorf("global start output %q", out)
		}
		c.Await("global unit on 2 machines", 20*time.Second, func() (bool, string) {
			var on []string
			for _, r := range c.UnitRows() {
				if r[0] == "glob.service" && r[2] == "active" {
					on = append(on, strings.SplitN(r[1], "/", 2)[0])
				}
			}
			slices.Sort(on)
			want := []string{c.Machines[0].ID, c.Machines[1].ID}
			slices.Sort(want)
			return slices.Equal(on, want), strings.Join(on, ",")
		})
		out = c.MustFleetctl("list-unit-files", "--no-legend")
		if !strings.Contains(out, "launched(2)") || !strings.Contains(out, "global") {
			t.Errorf("list-unit-files for a global unit: %q", out)
		}
		out = c.MustFleetctl("status", "glob.service")
		if strings.Count(out, "glob.service") < 2 {
			t.Errorf("status of a global unit should have one section per machine:\n%s", out)
		}
		c.MustFleetctl("destroy", "glob.service")
	})

	t.Run("failover", func(t *testing.T) {
		c := c.T(t)
		writeUnit(t, dir, "mover.service", "[Service]\n"+loop+"\n[X-Fleet]\nMachineMetadata=role=worker\n")
		c.MustFleetctl("start", dir+"/mover.service")
		where := c.AwaitActive(20*time.Second, "mover.service")
		victim := c.MachineIndex(where["mover.service"])
		if victim < 1 {
			t.Fatalf("mover.service on unexpected machine %q", where["mover.service"])
		}
		killed := time.Now()
		c.Kill(victim)
		c.Await("mover.service elsewhere", 30*time.Second, func() (bool, string) {
			for _, r := range c.UnitRows() {
				if r[0] == "mover.service" && r[2] == "active" && !strings.HasPrefix(r[1], c.Machines[victim].ID) {
					return true, ""
				}
			}
			out, _, _ := c.Fleetctl("list-units")
			return false, out
		})
		t.Logf("after kill -9 of machine %d, mover.service active elsewhere in %v (agent_ttl 3s)", victim, time.Since(killed))
		c.AwaitMachines(2)
	})
}

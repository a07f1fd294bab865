package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// TestResourcePlacement: seven units reserving 400M each on three machines
// offering 1G: six are placed, never more than two on a machine, and the
// seventh stays unplaced with a reason that names memory. Then
// MachineMetadata=disk!=ssd lands on the one hdd machine.
func TestResourcePlacement(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{
		Metadata:    []string{"disk=ssd", "disk=ssd", "disk=hdd"},
		MachineArgs: [][]string{{"--capacity", "memory=1G"}, {"--capacity", "memory=1G"}, {"--capacity", "memory=1G"}},
	})
	c.AwaitMachines(3)
	// list-machines -l shows what each machine offers.
	if out := c.MustFleetctl("list-machines", "-l"); !strings.Contains(out, "CAPACITY") || strings.Count(out, "memory=1G") != 3 {
		t.Errorf("list-machines -l does not show the capacity:\n%s", out)
	}
	dir := t.TempDir()
	writeUnit(t, dir, "big@.service", "[Service]\nExecStart=/bin/sleep 3600\n[X-Fleet]\nMemory=400M\n")
	c.MustFleetctl("submit", dir+"/big@.service")
	var names []string
	for i := 1; i <= 7; i++ {
		names = append(names, fmt.Sprintf("%s/big@%d.service", dir, i))
	}
	c.MustFleetctl(append([]string{"start", "--no-block"}, names...)...)

	perMachine := map[string]int{}
	c.Await("six big@ units active", 60*time.Second, func() (bool, string) {
		clear(perMachine)
		n := 0
		for _, r := range c.UnitRows() {
			if strings.HasPrefix(r[0], "big@") && len(r) >= 3 && r[2] == "active" {
				perMachine[r[1]]++
				n++
			}
		}
		return n == 6, fmt.Sprint(perMachine)
	})
	for m, n := range perMachine {
		if n > 2 {
			t.Errorf("machine %s runs %d units of 400M with 1G: overcommitted", m, n)
		}
	}
	// Six placed, the seventh is not, and says why.
	var unplaced string
	c.Await("the seventh unit's reason", 30*time.Second, func() (bool, string) {
		placed := map[string]bool{}
		for _, r := range c.UnitRows() {
			placed[r[0]] = true
		}
		for i := 1; i <= 7; i++ {
			if n := fmt.Sprintf("big@%d.service", i); !placed[n] {
				unplaced = n
			}
		}
		if unplaced == "" {
			return false, "all seven placed"
		}
		out, errOut, _ := c.Fleetctl("status", unplaced)
		return strings.Contains(out+errOut, "memory"), out + errOut
	})
	out, errOut, _ := c.Fleetctl("status", unplaced)
	out += errOut
	t.Logf("%s:\n%s", unplaced, out)
	if !strings.Contains(out, "400M") {
		t.Errorf("the reason does not name the 400M needed:\n%s", out)
	}

	// MachineMetadata operators: only the hdd machine matches.
	writeUnit(t, dir, "spinning.service", "[Service]\nExecStart=/bin/sleep 3600\n[X-Fleet]\nMachineMetadata=disk!=ssd\n")
	c.MustFleetctl("start", "--no-block", dir+"/spinning.service")
	where := c.AwaitActive(30*time.Second, "spinning.service")
	if i := c.MachineIndex(where["spinning.service"]); i != 2 {
		out, _, _ := c.Fleetctl("list-machines", "-l")
		t.Errorf("disk!=ssd landed on machine %d, want 2 (the hdd one)\n%s", i, out)
	}
}

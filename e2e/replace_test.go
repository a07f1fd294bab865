package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// --replace swaps a running unit's definition in place (the agent sees the
// new hash, unloads and loads it again); restart restarts it; dynamic
// metadata set through the API moves a unit whose MachineMetadata no longer
// matches.
func TestReplaceRestartAndDynamicMetadata(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{
		Metadata: []string{"role=a", "role=b"},
	})
	dir := t.TempDir()
	path := writeUnit(t, dir, "ver.service", "[Service]\nExecStart=/bin/sh -c 'while true; do echo version-one; sleep 0.2; done'\n")
	c.MustFleetctl("start", path)
	c.AwaitActive(20*time.Second, "ver.service")
	c.Await("version-one in the journal", 10*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("journal", "--lines", "5", "ver.service")
		return strings.Contains(out, "version-one"), out
	})

	// Without --replace: a warning, nothing changes.
	writeUnit(t, dir, "ver.service", "[Service]\nExecStart=/bin/sh -c 'while true; do echo version-two; sleep 0.2; done'\n")
	_, errOut, _ := c.Fleetctl("start", path)
	if !strings.Contains(errOut, "differs from local unit file") {
		t.Errorf("start without --replace: stderr %q, want the differs warning", errOut)
	}
	if out := c.MustFleetctl("cat", "ver.service"); !strings.Contains(out, "version-one") {
		t.Errorf("registry copy changed without --replace:\n%s", out)
	}

	c.MustFleetctl("start", "--replace", path)
	c.Await("version-two running", 20*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("journal", "--lines", "3", "ver.service")
		return strings.Count(out, "version-two") >= 2 && !strings.Contains(lastLine(out), "version-one"), out
	})
	c.AwaitActive(10*time.Second, "ver.service")

	// restart: a new start of the same definition.
	before, _, _ := c.Fleetctl("journal", "--lines", "200", "ver.service")
	c.MustFleetctl("restart", "ver.service")
	c.AwaitActive(20*time.Second, "ver.service")
	after, _, _ := c.Fleetctl("journal", "--lines", "400", "ver.service")
	if strings.Count(after, "Started") <= strings.Count(before, "Started") {
		t.Errorf("restart did not start the unit again:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Dynamic metadata: pin a unit to role=a, then change machine 0's role.
	pinned := writeUnit(t, dir, "pinned.service", "[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nMachineMetadata=role=a\n")
	c.MustFleetctl("start", pinned)
	where := c.AwaitActive(20*time.Second, "pinned.service")
	if where["pinned.service"] != c.Machines[0].ID {
		t.Fatalf("pinned.service on %s, want machine 0", where["pinned.service"])
	}
	body := `[{"op":"replace","path":"/` + c.Machines[0].ID + `/metadata/role","value":{"value":"x"}},` +
		`{"op":"add","path":"/` + c.Machines[1].ID + `/metadata/role","value":{"value":"a"}}]`
	if code, _, resp := apiCall(t, c, "PATCH", "/fleet/v1/machines", "application/json", []byte(body)); code != 204 {
		t.Fatalf("PATCH /machines: %d %s", code, resp)
	}
	c.Await("pinned.service moved to machine 1", 20*time.Second, func() (bool, string) {
		for _, r := range c.UnitRows() {
			if r[0] == "pinned.service" && r[2] == "active" && strings.HasPrefix(r[1], c.Machines[1].ID) {
				return true, ""
			}
		}
		out, _, _ := c.Fleetctl("list-units")
		return false, out
	})
	out := c.MustFleetctl("list-machines", "--full")
	if !strings.Contains(out, "role=x") {
		t.Errorf("dynamic metadata not shown by list-machines:\n%s", out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

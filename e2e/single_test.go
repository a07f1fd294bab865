package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

const helloUnit = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 0.2; done"
`

func writeUnit(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The README's one-machine story: start, list-units, journal, journal -f,
// stop, unload, destroy.
func TestSingleMachineLifecycle(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	dir := t.TempDir()
	path := writeUnit(t, dir, "hello.service", helloUnit)

	began := time.Now()
	out := c.MustFleetctl("start", path)
	if !strings.Contains(out, "Unit hello.service launched on "+c.Machines[0].ID[:8]+".../127.0.0.1") {
		t.Errorf("start output = %q", out)
	}
	c.AwaitActive(10*time.Second, "hello.service")
	t.Logf("hello.service active %v after fleetctl start began", time.Since(began))

	rows := c.UnitRows()
	if len(rows) != 1 || rows[0][0] != "hello.service" || rows[0][2] != "active" || rows[0][3] != "running" {
		t.Fatalf("list-units rows = %v", rows)
	}

	// journal shows the unit's lines
	c.Await("journal lines", 10*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("journal", "--lines", "3", "hello.service")
		return strings.Count(out, "Hello World") >= 3, out
	})

	// journal -f follows: new lines arrive while it runs
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	out, _, _ = c.FleetctlCtx(ctx, 0, "journal", "-f", "--lines", "1", "hello.service")
	cancel()
	if n := strings.Count(out, "Hello World"); n < 3 {
		t.Errorf("journal -f for 3s gave %d lines, want several:\n%s", n, out)
	}

	// status without SSH
	out = c.MustFleetctl("status", "hello.service")
	for _, want := range []string{"hello.service - Hello World", "Active: active (running)", "Hello World"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// stop: desired loaded, unit inactive
	_, errOut, code := c.Fleetctl("stop", "hello.service")
	if code != 0 {
		t.Fatalf("stop: %d %s", code, errOut)
	}
	c.Await("hello.service stopped", 10*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("list-unit-files", "--no-legend")
		f := strings.Fields(out)
		return len(f) >= 4 && f[2] == "loaded" && f[3] == "loaded", out
	})
	// stopping again: fleet's message
	_, errOut, code = c.Fleetctl("stop", "hello.service")
	if code == 0 && !strings.Contains(errOut, "Unable to stop unit") && !strings.Contains(errOut, "stopped") {
		t.Logf("second stop: %d %q", code, errOut)
	}

	// unload: gone from list-units, still in list-unit-files as inactive
	c.MustFleetctl("unload", "hello.service")
	c.Await("hello.service unloaded", 10*time.Second, func() (bool, string) {
		out, _, _ := c.Fleetctl("list-units", "--no-legend")
		return strings.TrimSpace(out) == "", out
	})
	out = c.MustFleetctl("list-unit-files", "--no-legend")
	if f := strings.Fields(out); len(f) < 5 || f[0] != "hello.service" || f[2] != "inactive" || f[3] != "inactive" || f[4] != "-" {
		t.Errorf("list-unit-files after unload = %q", out)
	}

	// destroy: gone everywhere
	out = c.MustFleetctl("destroy", "hello.service")
	if !strings.Contains(out, "Destroyed hello.service") {
		t.Errorf("destroy output %q", out)
	}
	if out := c.MustFleetctl("list-unit-files", "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("list-unit-files after destroy = %q", out)
	}
	if _, _, code := c.Fleetctl("cat", "hello.service"); code == 0 {
		t.Errorf("cat of destroyed unit succeeded")
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
	"github.com/fleetd/fleet/internal/testcluster"
)

// unitRow returns unit's list-units row (unit, machine, active, sub), or
// nil if list-units does not show it.
func unitRow(c *testcluster.Cluster, unit string) []string {
	for _, r := range c.UnitRows() {
		if len(r) >= 4 && r[0] == unit {
			return r
		}
	}
	return nil
}

// awaitUnitActive waits until list-units shows unit with one of the
// ACTIVE values in states, and returns the row.
func awaitUnitActive(c *testcluster.Cluster, unit string, timeout time.Duration, states ...string) []string {
	var row []string
	c.Await(fmt.Sprintf("%s %v in list-units", unit, states), timeout, func() (bool, string) {
		row = unitRow(c, unit)
		if row != nil {
			for _, s := range states {
				if row[2] == s {
					return true, ""
				}
			}
		}
		out, _, _ := c.Fleetctl("list-units", "--full")
		return false, out
	})
	return row
}

// fleetLines returns the lifecycle lines fleetd wrote into unit's journal
// on machine m (Stream "fleet"), with their times.
func fleetLines(m *testcluster.Machine, unit string) []journal.Entry {
	var out []journal.Entry
	for _, e := range journalEntries(m, unit) {
		if e.Stream == journal.StreamFleet {
			out = append(out, e)
		}
	}
	return out
}

// countFleetLines counts the entries of es whose line is exactly line.
func countFleetLines(es []journal.Entry, line string) int {
	n := 0
	for _, e := range es {
		if e.Line == line {
			n++
		}
	}
	return n
}

// unitJournal is `fleetctl journal --lines 500 unit`.
func unitJournal(c *testcluster.Cluster, unit string) string {
	out, errOut, code := c.Fleetctl("journal", "--lines", "500", unit)
	return fmt.Sprintf("%s%s(exit %d)", out, errOut, code)
}

// TestFailureSidekickStopsWithMain is seed 002's sidekick pattern with
// real fleetd and real processes: web-discovery@N (BindsTo=web@%i.service,
// MachineOf=web@%i.service) registers a key while web@N runs and removes
// it in ExecStop=. Stopping web@1 (fleetctl stop), a crash of web@2 (exit
// 3), or kill -9 of web@5's main PID takes its sidekick down with ExecStop= run, and leaves the other
// instance's sidekick alone. PartOf= follows a stop and a crash; Requires=
// follows a stop but not a crash (systemd's rules).
func TestFailureSidekickStopsWithMain(t *testing.T) {
	bin := t.TempDir()
	fleetctl := buildHelper(t, bin, "fleetctl", "../cmd/fleetctl")
	c := testcluster.New(t, fleetdBin, 2, testcluster.Options{})
	dir := t.TempDir()
	run := t.TempDir() // crash-N makes web@N exit 3; stopped-N is web-discovery@N's ExecStop= mark

	files := map[string]string{
		// Runs until run/crash-N appears, then fails (exit 3).
		"web@.service": fmt.Sprintf(`[Unit]
Description=web %%i
[Service]
ExecStart=/bin/sh -c "echo web%%i up; while [ ! -e %[1]s/crash-%%i ]; do sleep 0.2; done; echo web%%i crashing; exit 3"
ExecStop=/bin/echo stopping web%%i
`, run),
		"web-discovery@.service": fmt.Sprintf(`[Unit]
Description=Announce web@%%i
BindsTo=web@%%i.service
After=web@%%i.service
[Service]
ExecStart=/bin/sh -c "while true; do %[1]s kv set /web/web%%i/unit web@%%i.service; sleep 300; done"
ExecStop=%[1]s kv rm /web/web%%i/unit
ExecStop=/bin/sh -c "echo %%n > %[2]s/stopped-%%i"
[X-Fleet]
MachineOf=web@%%i.service
`, fleetctl, run),
		"web-part@.service": `[Unit]
Description=part of web@%i
PartOf=web@%i.service
After=web@%i.service
[Service]
ExecStart=/bin/sh -c "while true; do sleep 1; done"
[X-Fleet]
MachineOf=web@%i.service
`,
		"web-req@.service": `[Unit]
Description=requires web@%i
Requires=web@%i.service
After=web@%i.service
[Service]
ExecStart=/bin/sh -c "while true; do sleep 1; done"
[X-Fleet]
MachineOf=web@%i.service
`,
	}
	submit := []string{"submit"}
	for name, body := range files {
		submit = append(submit, writeUnit(t, dir, name, body))
	}
	c.MustFleetctl(submit...)

	// web@1, web@2 with their sidekicks; web@3 (stopped) and web@4
	// (crashed) with a PartOf= and a Requires= dependent each.
	units := []string{
		"web@1.service", "web-discovery@1.service",
		"web@2.service", "web-discovery@2.service",
		"web@3.service", "web-part@3.service", "web-req@3.service",
		"web@4.service", "web-part@4.service", "web-req@4.service",
		"web@5.service", "web-discovery@5.service",
	}
	c.MustFleetctl(append([]string{"start", "--no-block"}, units...)...)
	where := c.AwaitActive(90*time.Second, units...)
	for _, u := range units {
		if !strings.HasPrefix(u, "web@") {
			i := u[strings.Index(u, "@")+1 : strings.Index(u, ".")]
			if main := "web@" + i + ".service"; where[u] != where[main] {
				t.Errorf("MachineOf=web@%%i.service: %s on %s, %s on %s", u, where[u], main, where[main])
			}
		}
	}
	machineOf := func(unit string) *testcluster.Machine {
		return c.Machines[c.MachineIndex(where[unit])]
	}
	for _, i := range []int{1, 2, 5} {
		key, want := fmt.Sprintf("/web/web%d/unit", i), fmt.Sprintf("web@%d.service", i)
		c.Await(key+" registered", 60*time.Second, func() (bool, string) {
			out, errOut, code := c.Fleetctl("kv", "get", key)
			return code == 0 && strings.TrimSpace(out) == want, out + errOut
		})
	}

	// awaitDown waits for a dependent to go down after its unit was
	// stopped, crashed or killed at since.
	awaitDown := func(t *testing.T, c *testcluster.Cluster, unit string, since time.Time) {
		t.Helper()
		row := awaitUnitActive(c, unit, 60*time.Second, "inactive", "failed")
		t.Logf("%s %s/%s %v after its unit was stopped, crashed or killed", unit, row[2], row[3], time.Since(since).Round(time.Millisecond))
	}
	// stillUp checks that unit is active and never began to stop.
	stillUp := func(t *testing.T, unit string) {
		t.Helper()
		if row := unitRow(c, unit); row == nil || row[2] != "active" {
			t.Errorf("%s should be unaffected, list-units row: %v", unit, row)
		}
		for _, e := range fleetLines(machineOf(unit), unit) {
			if strings.HasPrefix(e.Line, "Stopping") || strings.HasPrefix(e.Line, "Stopped") {
				t.Errorf("%s: %q in its journal", unit, e.Line)
			}
		}
	}
	// sidekickStopped checks what web-discovery@i's ExecStop= did.
	sidekickStopped := func(t *testing.T, c *testcluster.Cluster, i int, why string) {
		t.Helper()
		unit := fmt.Sprintf("web-discovery@%d.service", i)
		b, err := os.ReadFile(filepath.Join(run, fmt.Sprintf("stopped-%d", i)))
		if err != nil || strings.TrimSpace(string(b)) != unit {
			t.Errorf("ExecStop= of %s did not write its mark (%q, %v):\n%s", unit, b, err, unitJournal(c, unit))
		}
		key := fmt.Sprintf("/web/web%d/unit", i)
		if out, _, code := c.Fleetctl("kv", "get", key); code == 0 {
			t.Errorf("%s still set to %q after %s stopped (ExecStop=fleetctl kv rm)", key, out, unit)
		}
		want := fmt.Sprintf("Stopping Announce web@%d: it is bound to web@%d.service, which %s.", i, i, why)
		if countFleetLines(fleetLines(machineOf(unit), unit), want) != 1 {
			t.Errorf("%s's journal lacks %q:\n%s", unit, want, unitJournal(c, unit))
		}
	}

	t.Run("BindsTo follows fleetctl stop", func(t *testing.T) {
		c := c.T(t)
		began := time.Now()
		c.MustFleetctl("stop", "web@1.service")
		awaitUnitActive(c, "web@1.service", 60*time.Second, "inactive")
		awaitDown(t, c, "web-discovery@1.service", began)
		sidekickStopped(t, c, 1, "stopped")
		stillUp(t, "web@2.service")
		stillUp(t, "web-discovery@2.service")
		if out, _, code := c.Fleetctl("kv", "get", "/web/web2/unit"); code != 0 || strings.TrimSpace(out) != "web@2.service" {
			t.Errorf("/web/web2/unit = %q (exit %d), want web@2.service", out, code)
		}
	})

	t.Run("BindsTo follows a crash", func(t *testing.T) {
		c := c.T(t)
		if err := os.WriteFile(filepath.Join(run, "crash-2"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		awaitUnitActive(c, "web@2.service", 60*time.Second, "failed")
		awaitDown(t, c, "web-discovery@2.service", began)
		sidekickStopped(t, c, 2, "failed")
		if j := unitJournal(c, "web@2.service"); !strings.Contains(j, "web2 crashing") ||
			!strings.Contains(j, "web@2.service: Main process exited, code=exited, status=3") {
			t.Errorf("web@2.service's journal does not show the crash:\n%s", j)
		}
	})

	t.Run("BindsTo follows kill -9 of the main PID", func(t *testing.T) {
		c := c.T(t)
		status, errOut, code := c.Fleetctl("status", "web@5.service")
		mm := regexp.MustCompile(`(?m)^ *Main PID: (\d+) \(sh\)$`).FindStringSubmatch(status)
		if code != 0 || mm == nil {
			t.Fatalf("status web@5.service: exit %d, no `Main PID: N (sh)`:\n%s%s", code, status, errOut)
		}
		pid, _ := strconv.Atoi(mm[1])
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		began := time.Now()
		awaitUnitActive(c, "web@5.service", 60*time.Second, "failed")
		awaitDown(t, c, "web-discovery@5.service", began)
		sidekickStopped(t, c, 5, "failed")
		if j := unitJournal(c, "web@5.service"); !strings.Contains(j, "web@5.service: Main process exited, code=killed, status=9/KILL") {
			t.Errorf("web@5.service's journal does not show the kill:\n%s", j)
		}
	})

	t.Run("PartOf and Requires follow a stop", func(t *testing.T) {
		c := c.T(t)
		began := time.Now()
		c.MustFleetctl("stop", "web@3.service")
		awaitDown(t, c, "web-part@3.service", began)
		awaitDown(t, c, "web-req@3.service", began)
		stillUp(t, "web@4.service")
		stillUp(t, "web-part@4.service")
		stillUp(t, "web-req@4.service")
	})

	t.Run("PartOf follows a crash, Requires does not", func(t *testing.T) {
		c := c.T(t)
		if err := os.WriteFile(filepath.Join(run, "crash-4"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		awaitUnitActive(c, "web@4.service", 60*time.Second, "failed")
		awaitDown(t, c, "web-part@4.service", began)
		// Both dependents are looked at when web@4 fails: once web-part@4
		// is down, web-req@4 would have been told to stop too.
		stillUp(t, "web-req@4.service")
		want := "Stopping part of web@4: it is bound to web@4.service, which failed."
		if countFleetLines(fleetLines(machineOf("web-part@4.service"), "web-part@4.service"), want) != 1 {
			t.Errorf("web-part@4.service's journal lacks %q:\n%s", want, unitJournal(c, "web-part@4.service"))
		}
	})

	// %i was expanded in every dependency: no sidekick looked for a unit
	// literally named web@%i.service.
	for _, u := range units {
		if strings.HasPrefix(u, "web@") {
			continue
		}
		for _, e := range journalEntries(machineOf(u), u) {
			if strings.Contains(e.Line, "not managed by fleet here") || strings.Contains(e.Line, "%i") {
				t.Errorf("%s: %q", u, e.Line)
			}
		}
	}
	for _, m := range c.Machines {
		if log := m.Log(); strings.Contains(log, "web@%i.service") || strings.Contains(log, "not managed by fleet here") {
			t.Errorf("fleetd %d's log names an unexpanded or unmanaged dependency:\n%s", m.Index, log)
		}
	}
}

// TestFailureCrashLoopEndsFailed: a service that exits at once with
// Restart=always is restarted at most StartLimitBurst= times within
// StartLimitIntervalSec= (defaults 5 and 10 s), then left failed with
// "Start request repeated too quickly." (result 'start-limit-hit'), as in
// systemd. An explicit fleetctl stop + start resets the counter (systemd's
// reset-failed + start).
func TestFailureCrashLoopEndsFailed(t *testing.T) {
	c := testcluster.New(t, fleetdBin, 1, testcluster.Options{})
	m := c.Machines[0]
	dir := t.TempDir()
	run := t.TempDir()

	const limitLine = "Start request repeated too quickly."
	// starts counts the starts of unit (its "Starting <desc>..." lines).
	starts := func(unit, desc string) int {
		return countFleetLines(fleetLines(m, unit), "Starting "+desc+"...")
	}
	awaitLimit := func(t *testing.T, c *testcluster.Cluster, unit string, n int, began time.Time) {
		t.Helper()
		row := awaitUnitActive(c, unit, 60*time.Second, "failed")
		if row[3] != "failed" {
			t.Errorf("%s: list-units row %v, want failed/failed", unit, row)
		}
		c.Await(fmt.Sprintf("%s's journal to say %q %d times", unit, limitLine, n), 30*time.Second, func() (bool, string) {
			return countFleetLines(fleetLines(m, unit), unit+": "+limitLine) == n, journalText(m, unit)
		})
		t.Logf("%s failed for good %v after its start", unit, time.Since(began).Round(time.Millisecond))
	}

	var crashStarts int
	t.Run("default limit", func(t *testing.T) {
		c := c.T(t)
		unit := writeUnit(t, dir, "crash.service", `[Unit]
Description=crash loop
[Service]
ExecStart=/bin/false
Restart=always
RestartSec=100ms
`)
		began := time.Now()
		c.MustFleetctl("start", "--no-block", unit)
		awaitLimit(t, c, "crash.service", 1, began)

		status, errOut, _ := c.Fleetctl("status", "crash.service")
		if !strings.Contains(status, limitLine) || !statusHas(status, "Active", "failed") {
			t.Errorf("status does not say %q and Active: failed:\n%s%s", limitLine, status, errOut)
		}
		es := fleetLines(m, "crash.service")
		crashStarts = starts("crash.service", "crash loop")
		if crashStarts < 2 || crashStarts > 5+1 {
			t.Errorf("%d starts before the start limit, want 2..6 (StartLimitBurst=5):\n%s", crashStarts, journalText(m, "crash.service"))
		}
		// all of them within StartLimitIntervalSec= (10 s)
		var first, limit time.Time
		for _, e := range es {
			if first.IsZero() && e.Line == "Starting crash loop..." {
				first = e.Time
			}
			if e.Line == "crash.service: "+limitLine {
				limit = e.Time
			}
		}
		if d := limit.Sub(first); d > 10*time.Second {
			t.Errorf("start limit hit %v after the first start, more than StartLimitIntervalSec=10s", d)
		}
		if n := countFleetLines(es, "crash.service: Failed with result 'start-limit-hit'."); n != 1 {
			t.Errorf("%d \"Failed with result 'start-limit-hit'\" lines, want 1:\n%s", n, journalText(m, "crash.service"))
		}
		t.Logf("crash.service: %d starts, then %q", crashStarts, limitLine)
	})

	t.Run("StartLimitBurst=2", func(t *testing.T) {
		c := c.T(t)
		// Fails until run/fixed exists.
		unit := writeUnit(t, dir, "limited.service", fmt.Sprintf(`[Unit]
Description=limited crash loop
StartLimitBurst=2
StartLimitIntervalSec=30s
[Service]
ExecStart=/bin/sh -c "[ -e %s/fixed ] || exit 1; exec sleep 1000"
Restart=on-failure
RestartSec=100ms
`, run))
		began := time.Now()
		c.MustFleetctl("start", "--no-block", unit)
		awaitLimit(t, c, "limited.service", 1, began)
		if n := starts("limited.service", "limited crash loop"); n < 2 || n > 3 {
			t.Errorf("%d starts before the start limit, want 2..3 (StartLimitBurst=2):\n%s", n, journalText(m, "limited.service"))
		}

		// The operator fixes the cause and restarts it, well within the
		// 30 s interval: the explicit start resets the counter.
		if err := os.WriteFile(filepath.Join(run, "fixed"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		before := starts("limited.service", "limited crash loop")
		c.MustFleetctl("stop", "--block-attempts", "30", "limited.service")
		out, errOut, code := c.Fleetctl("start", "--block-attempts", "30", "limited.service")
		if code != 0 {
			t.Fatalf("start after stop: exit %d\nstdout:\n%s\nstderr:\n%s\njournal:\n%s", code, out, errOut, journalText(m, "limited.service"))
		}
		c.AwaitActive(60*time.Second, "limited.service")
		if n := starts("limited.service", "limited crash loop"); n != before+1 {
			t.Errorf("%d starts after stop + start, want %d:\n%s", n, before+1, journalText(m, "limited.service"))
		}
		if n := time.Since(began); n > 30*time.Second {
			t.Logf("note: %v since the first start, beyond the 30 s interval: the reset was not needed", n)
		}
	})

	t.Run("stop and start of a crash loop starts it again", func(t *testing.T) {
		c := c.T(t)
		// Still failed, not restarted since (the limit ended the loop).
		if n := starts("crash.service", "crash loop"); n != crashStarts {
			t.Errorf("crash.service started %d times, %d when it hit the limit", n, crashStarts)
		}
		c.MustFleetctl("stop", "--block-attempts", "30", "crash.service")
		began := time.Now()
		c.MustFleetctl("start", "--no-block", "crash.service")
		awaitLimit(t, c, "crash.service", 2, began)
		if n := starts("crash.service", "crash loop"); n <= crashStarts {
			t.Errorf("crash.service not started again after stop + start (%d starts)", n)
		}
	})
}

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/testcluster"
)

// Jobs ([X-Fleet] Job=true, fleetctl run) on three machines: a non-oneshot
// is refused, a failing job fails, a global job runs once per machine, and
// a job that fails twice then succeeds ends succeeded and is not run again
// when its machine dies (last: it kills a machine).
func TestJobs(t *testing.T) {
	const ttl = 3 * time.Second
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{
		Metadata: []string{"role=etcd", "role=work", "role=work"},
		AgentTTL: ttl,
	})
	dir := t.TempDir()
	run := func(c *testcluster.Cluster, timeout time.Duration, args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		out, errOut, code := c.FleetctlCtx(ctx, 0, append([]string{"run"}, args...)...)
		t.Logf("fleetctl run %s: exit %d after %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out, errOut)
		return out, errOut, code
	}

	t.Run("non-oneshot", func(t *testing.T) {
		c := c.T(t)
		p := writeUnit(t, dir, "notjob.service", "[Service]\nExecStart=/bin/true\n")
		_, errOut, code := run(c, 30*time.Second, "--no-follow", p)
		if code != 1 || !strings.Contains(errOut, "needs Type=oneshot") || !strings.Contains(errOut, "Type is simple") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		if out, _, _ := c.Fleetctl("list-unit-files", "--no-legend"); strings.Contains(out, "notjob.service") {
			t.Fatalf("a refused job was stored:\n%s", out)
		}
	})

	t.Run("failing", func(t *testing.T) {
		c := c.T(t)
		tries := filepath.Join(dir, "fails.out")
		p := writeUnit(t, dir, "fails.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo about to fail; echo x >> "+tries+"; exit 3'\n")
		// Run twice: the second run clears the failed record, and the
		// agent where it failed (it stays placed there) runs it again.
		for i := 1; i <= 2; i++ {
			_, errOut, code := run(c, 60*time.Second, p)
			// fleetctl run exits with the job's own exit status (exit 3).
			if code != 3 || !strings.Contains(errOut, "Job fails.service failed on ") || !strings.Contains(errOut, "exit-code (code=exited, status=3") {
				t.Fatalf("run %d: exit %d, stderr %q", i, code, errOut)
			}
			if b, _ := os.ReadFile(tries); strings.Count(string(b), "x") != i {
				t.Fatalf("after run %d the job ran %d times", i, strings.Count(string(b), "x"))
			}
		}
		// The stored file carries Job=true; list-units shows the result.
		if out := c.MustFleetctl("cat", "fails.service"); !strings.Contains(out, "Job=true") {
			t.Errorf("stored file lacks Job=true:\n%s", out)
		}
		out := c.MustFleetctl("list-units", "--no-legend", "--fields", "unit,active,result")
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
			return slices.Equal(strings.Fields(l), []string{"fails.service", "failed", "exit-code"})
		}) {
			t.Errorf("list-units result:\n%s", out)
		}
		// And its exit status.
		if out := c.MustFleetctl("list-units", "--no-legend", "--fields", "unit,exit"); !strings.Contains(out, "code=exited, status=3") {
			t.Errorf("list-units exit status:\n%s", out)
		}
	})

	t.Run("global", func(t *testing.T) {
		c := c.T(t)
		out := filepath.Join(dir, "global.out")
		p := writeUnit(t, dir, "everywhere.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo %m >> "+out+"'\n[X-Fleet]\nGlobal=true\n")
		stdout, _, code := run(c, 60*time.Second, "--no-follow", p)
		if code != 0 || strings.Count(stdout, "Job everywhere.service succeeded on ") != 3 {
			t.Fatalf("exit %d, stdout %q", code, stdout)
		}
		lines := func() []string {
			b, _ := os.ReadFile(out)
			return strings.Fields(string(b))
		}
		time.Sleep(3 * time.Second)
		first := lines()
		time.Sleep(3 * time.Second)
		again := lines()
		t.Logf("runs after 3 s: %d %v; after 6 s: %d", len(first), first, len(again))
		if len(first) != 3 || len(again) != 3 {
			t.Fatalf("global job ran %d then %d times, want 3: %v", len(first), len(again), again)
		}
		seen := map[string]bool{}
		for _, id := range first {
			seen[id] = true
		}
		for _, m := range c.Machines {
			if !seen[m.ID] {
				t.Errorf("machine %s did not run it: %v", m.ID, first)
			}
		}
	})

	t.Run("start of a Job=true unit", func(t *testing.T) {
		c := c.T(t)
		out := filepath.Join(dir, "started.out")
		p := writeUnit(t, dir, "started.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> "+out+"'\n[X-Fleet]\nJob=true\nMachineMetadata=role=work\n")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		stdout, errOut, code := c.FleetctlCtx(ctx, 0, "start", p)
		if code != 0 || !strings.Contains(stdout, "Job started.service succeeded on ") {
			t.Fatalf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errOut)
		}
		time.Sleep(2 * time.Second)
		if b, _ := os.ReadFile(out); strings.Count(string(b), "ran") != 1 {
			t.Fatalf("started.service ran %d times, want 1", strings.Count(string(b), "ran"))
		}
	})

	t.Run("fails twice then succeeds; not rerun after its machine dies", func(t *testing.T) {
		c := c.T(t)
		counter := filepath.Join(dir, "counter")
		script := writeUnit(t, dir, "count.sh", `n=$(cat `+counter+` 2>/dev/null || echo 0); n=$((n+1)); echo $n > `+counter+`; echo try $n; [ $n -ge 3 ]`+"\n")
		p := writeUnit(t, dir, "retry.service", `[Unit]
StartLimitBurst=10
[Service]
Type=oneshot
ExecStart=/bin/sh `+script+`
Restart=on-failure
RestartSec=100ms
[X-Fleet]
MachineMetadata=role=work
`)
		start := time.Now()
		stdout, _, code := run(c, 60*time.Second, p)
		took := time.Since(start)
		if code != 0 || !strings.Contains(stdout, "Job retry.service succeeded on ") {
			t.Fatalf("exit %d, stdout %q", code, stdout)
		}
		readCounter := func() string {
			b, _ := os.ReadFile(counter)
			return strings.TrimSpace(string(b))
		}
		if n := readCounter(); n != "3" {
			t.Fatalf("counter = %q, want 3", n)
		}
		rows := c.MustFleetctl("list-units", "--no-legend", "--full", "--fields", "unit,machine,result", "-o", "json")
		var js []struct{ Unit, Machine, Result string }
		if err := json.Unmarshal([]byte(rows), &js); err != nil {
			t.Fatalf("list-units -o json: %v\n%s", err, rows)
		}
		machine := ""
		for _, r := range js {
			if r.Unit == "retry.service" {
				machine = r.Machine
				if r.Result != "success" {
					t.Errorf("list-units result %q, want success", r.Result)
				}
			}
		}
		idx := c.MachineIndex(machine)
		t.Logf("retry.service ran on machine %d (%s) in %v (3 tries)", idx, machine, took.Round(time.Millisecond))
		if idx <= 0 {
			t.Fatalf("job ran on machine %q (index %d), want a work machine", machine, idx)
		}
		c.Kill(idx)
		time.Sleep(ttl + 5*time.Second)
		if n := readCounter(); n != "3" {
			t.Fatalf("after kill -9 of its machine, counter = %q, want 3 (rerun)", n)
		}
		if rows := c.MustFleetctl("list-units", "--no-legend", "--fields", "unit,machine,active"); strings.Contains(rows, "retry.service") && !strings.Contains(rows, "inactive") {
			t.Errorf("retry.service placed again after its machine died:\n%s", rows)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, _, code := c.FleetctlCtx(ctx, 0, "status", "retry.service")
		if code != 0 || !strings.Contains(st, "Job retry.service succeeded on ") {
			t.Errorf("status: exit %d\n%s", code, st)
		}
		if n := readCounter(); n != "3" {
			t.Fatalf("counter = %q at the end, want 3", n)
		}
	})
}

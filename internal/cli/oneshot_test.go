package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/runner"
)

const oneshotFile = `[Service]
Type=oneshot
ExecStart=/bin/sh -c "exit 0"
`

// statusText renders a status as fleetd does (runner.FormatStatus), so
// the tests follow the real format.
func statusText(active, sub string, execs []runner.ExecResult, recent ...string) string {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	return runner.FormatStatus(runner.Status{
		Name:  "o.service",
		State: runner.State{LoadState: "loaded", ActiveState: active, SubState: sub, Since: now.Add(-time.Second)},
		Execs: execs,
	}, now, "", recent)
}

func execRun(kind string, pid int, code string, status int) runner.ExecResult {
	t := time.Date(2026, 12, 3, 9, 59, 59, 0, time.UTC)
	return runner.ExecResult{Kind: kind, Cmd: "/bin/sh -c x", PID: pid, Code: code, Status: status, Start: t, End: t}
}

func TestParseRunReport(t *testing.T) {
	tests := []struct {
		name string
		text string
		want runReport
	}{
		{"never started", statusText("inactive", "dead", nil),
			runReport{active: "inactive"}},
		{"running", statusText("activating", "start", []runner.ExecResult{{Kind: "ExecStart", Cmd: "/bin/sleep 1", PID: 7, Start: time.Now()}}),
			runReport{active: "activating"}},
		{"ran, exit 0", statusText("inactive", "dead", []runner.ExecResult{execRun("ExecStart", 42, "exited", 0)}),
			runReport{active: "inactive", ran: true, status: "0",
				run: "Main PID: 42 (code=exited, status=0/SUCCESS)"}},
		{"failed, exit 3, with journal", statusText("failed", "failed", []runner.ExecResult{execRun("ExecStart", 43, "exited", 3)}, "Dec 03 10:00:00 host sh[43]: boom"),
			runReport{active: "failed", ran: true, status: "3", failed: "exit status 3",
				run:    "Main PID: 43 (code=exited, status=3/NOTIMPLEMENTED)",
				recent: []string{"Dec 03 10:00:00 host sh[43]: boom"}}},
		{"ExecStartPre failed", statusText("failed", "failed", []runner.ExecResult{execRun("ExecStartPre", 44, "exited", 1)}),
			runReport{active: "failed", ran: true, failed: "exit status 1",
				run: "Process: 44 ExecStartPre=/bin/sh -c x (code=exited, status=1/FAILURE)"}},
		{"killed", statusText("failed", "failed", []runner.ExecResult{execRun("ExecStart", 45, "killed", 15)}),
			runReport{active: "failed", ran: true, status: "15", failed: "killed by signal 15/TERM",
				run: "Main PID: 45 (code=killed, status=15/TERM)"}},
		{"several ExecStart, the last is the main one",
			statusText("inactive", "dead", []runner.ExecResult{execRun("ExecStart", 46, "exited", 0), execRun("ExecStart", 47, "exited", 0)}),
			runReport{active: "inactive", ran: true, status: "0",
				run: "Process: 46 ExecStart=/bin/sh -c x (code=exited, status=0/SUCCESS)\nMain PID: 47 (code=exited, status=0/SUCCESS)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRunReport(tt.text); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRunReport(\n%s) =\n%#v\nwant\n%#v", tt.text, got, tt.want)
			}
		})
	}
}

func TestIsRunOnce(t *testing.T) {
	tests := []struct {
		name string
		opts []*client.UnitOption
		want bool
	}{
		{"oneshot", opts("Service", "Type", "oneshot"), true},
		{"oneshot, RemainAfterExit=no", opts("Service", "Type", "oneshot", "Service", "RemainAfterExit", "no"), true},
		{"oneshot, RemainAfterExit=yes", opts("Service", "Type", "oneshot", "Service", "RemainAfterExit", "yes"), false},
		{"oneshot, RemainAfterExit=true", opts("Service", "Type", "oneshot", "Service", "RemainAfterExit", "true"), false},
		{"last Type wins", opts("Service", "Type", "oneshot", "Service", "Type", "simple"), false},
		{"simple", opts("Service", "Type", "simple"), false},
		{"default type", opts("Service", "ExecStart", "/bin/true"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isRunOnce(client.Unit{Name: "o.service", Options: tt.opts}); got != tt.want {
				t.Errorf("isRunOnce = %v, want %v", got, tt.want)
			}
		})
	}
}

// oneshotCluster is a fake cluster where a launched unit reports state
// active/sub and, from the status request `from` on, the status text
// run (before: never started).
func oneshotCluster(t *testing.T, active, sub string, from int, run string) *fakeCluster {
	f := newFakeCluster(t)
	f.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			if out[i].SystemdActiveState == "active" {
				out[i].SystemdActiveState, out[i].SystemdSubState = active, sub
			}
		}
		return out
	}
	f.statusHook = func(n int, name string) []client.StatusEntry {
		text := statusText("inactive", "dead", nil)
		if n >= from {
			text = run
		}
		return []client.StatusEntry{{MachineID: m1, Text: text}}
	}
	return f
}

func TestStartOneshot(t *testing.T) {
	ok := statusText("inactive", "dead", []runner.ExecResult{execRun("ExecStart", 42, "exited", 0)})
	bad := statusText("failed", "failed", []runner.ExecResult{execRun("ExecStart", 43, "exited", 3)}, "Dec 03 10:00:00 host sh[43]: boom")
	tests := []struct {
		name           string
		active, sub    string
		from           int
		run            string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"exit 0 returns 0 once it ran (inactive/dead before and after)", "inactive", "dead", 5, ok, nil, 0,
			"Unit o.service launched on 3d1219c7.../127.0.0.1\nUnit o.service ran on 3d1219c7.../127.0.0.1 (exit status 0)\n", ""},
		{"exit 0 with --block-attempts", "inactive", "dead", 3, ok, []string{"--block-attempts=50"}, 0,
			"Unit o.service launched on 3d1219c7.../127.0.0.1\nUnit o.service ran on 3d1219c7.../127.0.0.1 (exit status 0)\n", ""},
		{"exit 3 fails naming the status and the journal", "failed", "failed", 1, bad, []string{"--block-attempts=50"}, 1,
			"Unit o.service launched on 3d1219c7.../127.0.0.1\n",
			"Unit o.service failed on 3d1219c7.../127.0.0.1: exit status 3\n" +
				"    Dec 03 10:00:00 host sh[43]: boom\n" +
				"See fleetctl status o.service and fleetctl journal o.service\n"},
		{"never runs: bounded by --block-attempts", "inactive", "dead", 1 << 30, ok, []string{"--block-attempts=2"}, 1,
			"Unit o.service launched on 3d1219c7.../127.0.0.1\n",
			"Error waiting for systemd unit states: timed out waiting for unit o.service to run (now loaded/inactive/dead)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := oneshotCluster(t, tt.active, tt.sub, tt.from, tt.run)
			p := writeFile(t, t.TempDir(), "o.service", oneshotFile)
			r := f.run(t, nil, append(append([]string{"start"}, tt.args...), p)...)
			wantResult(t, r, tt.code, tt.stdout, tt.stderr)
			if n := f.count("GET /fleet/v1/status/o.service"); n < tt.from && tt.from < 1<<30 {
				t.Fatalf("returned after %d status requests, before the run", n)
			}
		})
	}
}

// TestStartOneshotIgnoresEarlierRun: a loaded oneshot that ran before is
// started again; its earlier (successful) run must not be taken for the
// new one, which fails.
func TestStartOneshotIgnoresEarlierRun(t *testing.T) {
	earlier := statusText("inactive", "dead", []runner.ExecResult{execRun("ExecStart", 100, "exited", 0)})
	ours := statusText("failed", "failed", []runner.ExecResult{execRun("ExecStart", 200, "exited", 3)})
	f := newFakeCluster(t)
	f.addUnit(client.Unit{Name: "o.service", DesiredState: "loaded",
		Options: opts("Service", "Type", "oneshot", "Service", "ExecStart", "/bin/false")})
	f.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			out[i].SystemdActiveState, out[i].SystemdSubState = "inactive", "dead"
			if n > 10 {
				out[i].SystemdActiveState, out[i].SystemdSubState = "failed", "failed"
			}
		}
		return out
	}
	f.statusHook = func(n int, name string) []client.StatusEntry {
		text := earlier
		if f.stateGets > 10 {
			text = ours
		}
		return []client.StatusEntry{{MachineID: m1, Text: text}}
	}
	r := f.run(t, nil, "start", "--block-attempts=100", "o")
	if r.code != 1 || !strings.Contains(r.stderr, "Unit o.service failed on 3d1219c7.../127.0.0.1: exit status 3") ||
		strings.Contains(r.stdout, " ran on ") {
		t.Fatalf("%+v", r)
	}
}

// TestStartRemainAfterExit: with RemainAfterExit=yes active/exited is
// success as for any unit; no status is asked.
func TestStartRemainAfterExit(t *testing.T) {
	f := newFakeCluster(t)
	f.stateHook = func(n int, states []client.UnitState) []client.UnitState {
		out := append([]client.UnitState(nil), states...)
		for i := range out {
			out[i].SystemdActiveState, out[i].SystemdSubState = "active", "exited"
		}
		return out
	}
	p := writeFile(t, t.TempDir(), "o.service", oneshotFile+"RemainAfterExit=yes\n")
	wantResult(t, f.run(t, nil, "start", p), 0, "Unit o.service launched on 3d1219c7.../127.0.0.1\n", "")
	if n := f.count("GET /fleet/v1/status/o.service"); n != 0 {
		t.Fatalf("%d status requests", n)
	}
}

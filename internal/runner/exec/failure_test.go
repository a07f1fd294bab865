package exec

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/journal"
)

func TestRateLimit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		interval time.Duration
		burst    int
		at       []time.Duration // offsets from t0
		want     []bool
	}{
		{"burst then refused", 10 * time.Second, 5, []time.Duration{0, 1, 2, 3, 4, 5, 6}, []bool{true, true, true, true, true, false, false}},
		{"window passes", 10 * time.Second, 2, []time.Duration{0, time.Second, 2 * time.Second, 11 * time.Second, 12 * time.Second, 13 * time.Second},
			[]bool{true, true, false, true, true, false}},
		{"burst 0 disables", 10 * time.Second, 0, []time.Duration{0, 0, 0, 0, 0, 0, 0}, []bool{true, true, true, true, true, true, true}},
		{"interval 0 disables", 0, 1, []time.Duration{0, 0, 0}, []bool{true, true, true}},
		{"burst 1", time.Minute, 1, []time.Duration{0, time.Second}, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rl rateLimit
			for i, off := range tc.at {
				if got := rl.below(t0.Add(off), tc.interval, tc.burst); got != tc.want[i] {
					t.Fatalf("start %d at +%v: below=%v, want %v", i+1, off, got, tc.want[i])
				}
			}
			rl.reset()
			if !rl.below(t0.Add(tc.at[len(tc.at)-1]), tc.interval, tc.burst) {
				t.Fatal("refused right after reset")
			}
		})
	}
}

func TestStartLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unit     string
		interval time.Duration
		burst    int
		err      string
	}{
		{"defaults", "[Service]\nExecStart=/bin/true\n", 10 * time.Second, 5, ""},
		{"unit section", "[Unit]\nStartLimitIntervalSec=20s\nStartLimitBurst=3\n[Service]\nExecStart=/bin/true\n", 20 * time.Second, 3, ""},
		{"old service spelling", "[Service]\nExecStart=/bin/true\nStartLimitInterval=1min\nStartLimitBurst=7\n", time.Minute, 7, ""},
		{"disabled by interval", "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/true\n", 0, 5, ""},
		{"disabled by burst", "[Unit]\nStartLimitBurst=0\n[Service]\nExecStart=/bin/true\n", 10 * time.Second, 0, ""},
		{"infinity", "[Unit]\nStartLimitIntervalSec=infinity\n[Service]\nExecStart=/bin/true\n", math.MaxInt64, 5, ""},
		{"empty resets", "[Unit]\nStartLimitIntervalSec=3s\nStartLimitIntervalSec=\n[Service]\nExecStart=/bin/true\n", 10 * time.Second, 5, ""},
		{"bad burst", "[Unit]\nStartLimitBurst=many\n[Service]\nExecStart=/bin/true\n", 0, 0, "StartLimitBurst=many"},
		{"negative burst", "[Unit]\nStartLimitBurst=-1\n[Service]\nExecStart=/bin/true\n", 0, 0, "StartLimitBurst=-1"},
		{"bad interval", "[Unit]\nStartLimitIntervalSec=soon\n[Service]\nExecStart=/bin/true\n", 0, 0, "StartLimitIntervalSec=soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig("x.service", parseUnit(t, tc.unit))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.startLimitInterval != tc.interval || c.startLimitBurst != tc.burst {
				t.Fatalf("interval %v burst %d, want %v %d", c.startLimitInterval, c.startLimitBurst, tc.interval, tc.burst)
			}
		})
	}
}

func countFleetLines(j *journal.Journal, unit, s string) int {
	es, _ := j.Tail(unit, 0)
	n := 0
	for _, e := range es {
		if e.Stream == journal.StreamFleet && strings.Contains(e.Line, s) {
			n++
		}
	}
	return n
}

func countRuns(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "run")
}

// Restart=always with a command that fails at once: the start limit
// (5 starts in 10 s by default) fails the unit instead of restarting it
// forever; an explicit start resets the counter.
func TestStartLimitHit(t *testing.T) {
	h := newHarness(t, false)
	count := filepath.Join(t.TempDir(), "count")
	h.load("spin.service", fmt.Sprintf(`[Unit]
Description=Spinning service
[Service]
ExecStart=/bin/sh -c "echo run >> %s; exec /bin/false"
Restart=always
`, count))
	h.start("spin.service")
	h.waitState("spin.service", "failed", "failed")
	h.waitLog("spin.service", "spin.service: Start request repeated too quickly.")
	h.waitLog("spin.service", "spin.service: Failed with result 'start-limit-hit'.")
	h.waitLog("spin.service", "Failed to start Spinning service.")
	if n := countRuns(count); n != 5 {
		t.Fatalf("ran %d times, want 5\n%s", n, h.dump("spin.service"))
	}
	st, _ := h.r.Status("spin.service")
	if st.Restarts != 5 {
		t.Errorf("restart counter %d, want 5", st.Restarts)
	}
	// It stays failed: no restart is pending (a wrong one would have
	// plenty of chances in this second).
	time.Sleep(time.Second)
	if n := countRuns(count); n != 5 || h.r.States()["spin.service"].ActiveState != "failed" {
		t.Fatalf("ran %d times after the limit; state %+v", n, h.r.States()["spin.service"])
	}

	// An explicit start is reset-failed + start: five more runs.
	h.start("spin.service")
	h.eventually("second start-limit-hit", func() bool {
		return countFleetLines(h.j, "spin.service", "Start request repeated too quickly.") == 2 &&
			h.r.States()["spin.service"].ActiveState == "failed"
	}, "spin.service")
	if n := countRuns(count); n != 10 {
		t.Fatalf("ran %d times, want 10", n)
	}
}

// A custom limit, and the limit off.
func TestStartLimitSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  string
		runs   int // exact runs before start-limit-hit; 0: the limit is off
		onFail bool
	}{
		{"burst 2", "[Unit]\nStartLimitIntervalSec=1h\nStartLimitBurst=2\n", 2, true},
		{"old spelling", "[Service]\nStartLimitInterval=1h\nStartLimitBurst=3\n", 3, false},
		{"burst 0 disables", "[Unit]\nStartLimitBurst=0\n", 0, false},
		{"interval 0 disables", "[Unit]\nStartLimitIntervalSec=0\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, false)
			count := filepath.Join(t.TempDir(), "count")
			restart := "always"
			if tc.onFail {
				restart = "on-failure"
			}
			h.load("lim.service", fmt.Sprintf("%s\n[Service]\nExecStart=/bin/sh -c \"echo run >> %s; exit 3\"\nRestart=%s\nRestartSec=50ms\n",
				tc.limit, count, restart))
			h.start("lim.service")
			if tc.runs > 0 {
				h.waitState("lim.service", "failed", "failed")
				h.waitLog("lim.service", "Failed with result 'start-limit-hit'.")
				if n := countRuns(count); n != tc.runs {
					t.Fatalf("ran %d times, want %d", n, tc.runs)
				}
				return
			}
			h.eventually("more runs than the default burst", func() bool { return countRuns(count) > 2*defaultStartLimitBurst }, "lim.service")
			if n := countFleetLines(h.j, "lim.service", "start-limit-hit"); n != 0 {
				t.Fatalf("start limit hit with the limit off")
			}
			h.stop("lim.service")
			h.eventually("lim.service down", func() bool {
				st := h.r.States()["lim.service"]
				return st.ActiveState == "inactive" || st.ActiveState == "failed"
			}, "lim.service")
		})
	}
}

// heartbeatRunner is a runner as fleetd's, with a heartbeat file.
func heartbeatRunner(t *testing.T, dir, hb string, noCgroups bool) (*Runner, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Journal: j, Hostname: "testhost", MachineID: "machine1", BootID: "boot1",
		DisableCgroups: noCgroups,
		StateDir:       filepath.Join(dir, "state"), Shim: testShim(), ShimEnv: testShimEnv,
		Heartbeat: hb, HeartbeatTTL: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, j
}

// beat touches hb until the returned function is called.
func beat(hb string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			now := time.Now()
			os.Chtimes(hb, now, now)
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}

// When fleetd is gone (its heartbeat stale, or the heartbeat file removed
// with the data directory), the shim stops the unit the way the runner
// would: ExecStop= (environment, $MAINPID, specifiers), KillSignal=, then
// ExecStopPost= ($SERVICE_RESULT, $EXIT_CODE).
func TestShimStopsUnitWhenFleetdGone(t *testing.T) {
	type variant struct {
		name        string
		noCgroups   bool
		removeHB    bool // remove the heartbeat file instead of letting it go stale
		runnerAlive bool // the runner keeps watching (fleetd cut off, not dead)
	}
	var vs []variant
	for _, cg := range []bool{false, true} {
		for _, rm := range []bool{false, true} {
			mode := "cgroups"
			if cg {
				mode = "pgroups"
			}
			how := "stale"
			if rm {
				how = "missing"
			}
			vs = append(vs, variant{name: mode + "/" + how, noCgroups: cg, removeHB: rm})
		}
	}
	vs = append(vs, variant{name: "runner-alive", runnerAlive: true})
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			if err := os.Mkdir(data, 0o755); err != nil {
				t.Fatal(err)
			}
			hb := filepath.Join(data, "lease")
			if err := os.WriteFile(hb, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			stopBeat := beat(hb)
			defer func() {
				if stopBeat != nil {
					stopBeat()
				}
			}()
			r, j := heartbeatRunner(t, dir, hb, v.noCgroups)
			h := &harness{t: t, r: r, j: j}
			closed := false
			defer func() {
				if !closed {
					ctx, cancel := context.WithTimeout(context.Background(), patience)
					defer cancel()
					r.StopAll(ctx)
					r.Close(ctx)
					j.Close()
				}
			}()
			// The main process ignores SIGTERM: only ExecStop= (which
			// kills $MAINPID with SIGUSR1) stops it within the timeout.
			h.load("web.service", `[Unit]
Description=Web %i
[Service]
Environment=WHO=fleet
ExecStart=/bin/sh -c 'trap "" TERM; trap "echo usr1; exit 0" USR1; echo up; while :; do sleep 0.1; done'
ExecStop=/bin/sh -c 'echo "$WHO $MAINPID %n" >> `+out+`/stop; kill -USR1 $MAINPID'
ExecStopPost=/bin/sh -c 'echo "$SERVICE_RESULT $EXIT_CODE $EXIT_STATUS" >> `+out+`/post'
TimeoutStopSec=30
`)
			h.start("web.service")
			pid := h.waitState("web.service", "active", "running").MainPID
			h.waitOutput("web.service", "up")
			if !v.runnerAlive {
				// fleetd dies: the runner goes away, leaving the unit up.
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				if err := r.Close(ctx); err != nil {
					t.Fatal(err)
				}
				closed = true
				defer j.Close()
			}
			stopBeat()
			stopBeat = nil
			if v.removeHB {
				if err := os.RemoveAll(data); err != nil {
					t.Fatal(err)
				}
			}
			h.eventually("main process stopped by its shim", func() bool { return !alive(pid) }, "web.service")
			h.waitLog("web.service", "has not renewed the machine's lease")
			if v.removeHB {
				h.waitLog("web.service", "heartbeat file is missing")
			}
			h.waitOutput("web.service", "usr1")
			h.waitLog("web.service", "Stopped Web .") // %i of web.service is empty
			h.eventually("ExecStopPost ran", func() bool {
				b, _ := os.ReadFile(filepath.Join(out, "post"))
				return len(b) > 0
			}, "web.service")
			b, _ := os.ReadFile(filepath.Join(out, "stop"))
			if want := "fleet " + strconv.Itoa(pid) + " web.service\n"; string(b) != want {
				t.Fatalf("ExecStop wrote %q, want %q", b, want)
			}
			b, _ = os.ReadFile(filepath.Join(out, "post"))
			if want := "success exited 0\n"; string(b) != want {
				t.Fatalf("ExecStopPost wrote %q, want %q", b, want)
			}
			if v.runnerAlive {
				// The runner sees the unit stopped, without running
				// ExecStop=/ExecStopPost= a second time or restarting it.
				h.waitState("web.service", "inactive", "dead")
				for _, f := range []string{"stop", "post"} {
					b, _ := os.ReadFile(filepath.Join(out, f))
					if n := strings.Count(string(b), "\n"); n != 1 {
						t.Fatalf("%s ran %d times", f, n)
					}
				}
				if n := countFleetLines(j, "web.service", "Stopped "); n != 1 {
					t.Fatalf("%d Stopped lines, want 1", n)
				}
			}
		})
	}
}

// KillMode= and SendSIGKILL= hold in the shim's stop: KillSignal= goes to
// the group, SIGKILL follows TimeoutStopSec=.
func TestShimStopEscalates(t *testing.T) {
	dir := t.TempDir()
	hb := filepath.Join(dir, "lease")
	if err := os.WriteFile(hb, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stopBeat := beat(hb)
	r, j := heartbeatRunner(t, dir, hb, false)
	h := &harness{t: t, r: r, j: j}
	h.load("stubborn.service", `[Service]
ExecStart=/bin/sh -c 'trap "" TERM; sleep 600 & trap "" TERM; echo up; wait'
TimeoutStopSec=1
`)
	h.start("stubborn.service")
	pid := h.waitState("stubborn.service", "active", "running").MainPID
	pids := h.waitProcesses("stubborn.service", 2, "shell and sleep")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	stopBeat()
	h.eventually("unit killed", func() bool { return !alive(pid) && pidsGone(pids) }, "stubborn.service")
	h.waitLog("stubborn.service", "State 'stop-sigterm' timed out. Killing.")
	h.waitLog("stubborn.service", "Failed with result 'timeout'.")
}

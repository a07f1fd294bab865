package runner

import (
	"strings"
	"testing"
	"time"
)

func TestFormatStatus(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	since := time.Date(2014, 11, 4, 11, 40, 22, 0, est)
	st := Status{
		Name:        "test.service",
		Description: "MyTestApp",
		UnitPath:    "/var/lib/fleet/units/test.service",
		State:       State{LoadState: "loaded", ActiveState: "active", SubState: "running", Since: since, MainPID: 4639},
		Execs: []ExecResult{
			{Kind: "ExecStartPre", Cmd: "/usr/bin/docker pull busybox", PID: 4485, Code: "exited", Status: 0, Start: since, End: since},
			{Kind: "ExecStart", Cmd: "/usr/bin/docker run busybox", PID: 4639, Start: since},
		},
		Processes: []Process{{PID: 4639, Cmd: "/usr/bin/docker run ..."}},
	}
	got := FormatStatus(st, since.Add(85*time.Second), "host", []string{"Nov 04 11:41:37 host docker[4639]: Hello World"})
	want := `● test.service - MyTestApp
   Loaded: loaded (/var/lib/fleet/units/test.service)
   Active: active (running) since Tue 2014-11-04 11:40:22 EST; 1min 25s ago
  Process: 4485 ExecStartPre=/usr/bin/docker pull busybox (code=exited, status=0/SUCCESS)
 Main PID: 4639 (docker)
   CGroup: test.service
           └─4639 /usr/bin/docker run ...

Nov 04 11:41:37 host docker[4639]: Hello World
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatStatusFailed(t *testing.T) {
	now := time.Date(2014, 11, 4, 12, 0, 0, 0, time.UTC)
	st := Status{
		Name:  "bad.service",
		State: State{LoadState: "loaded", ActiveState: "failed", SubState: "failed", Since: now.Add(-3 * time.Hour)},
		Execs: []ExecResult{{Kind: "ExecStart", Cmd: "/bin/false", PID: 12, Code: "exited", Status: 1, Start: now, End: now}},
	}
	got := FormatStatus(st, now, "", nil)
	for _, want := range []string{
		"× bad.service\n",
		"   Active: failed (Result: exit-code) since Tue 2014-11-04 09:00:00 UTC; 3h 0min ago\n",
		" Main PID: 12 (code=exited, status=1/FAILURE)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	st = Status{Name: "x.service", State: State{LoadState: "error"}, Error: "bad Type"}
	if got := FormatStatus(st, now, "", nil); !strings.Contains(got, "Loaded: error (Reason: bad Type)") || !strings.Contains(got, "Active: inactive\n") {
		t.Errorf("got\n%s", got)
	}
}

func TestExitStatusText(t *testing.T) {
	cases := map[string]string{
		ExitStatusText("exited", 0):   "0/SUCCESS",
		ExitStatusText("exited", 203): "203/EXEC",
		ExitStatusText("killed", 15):  "15/TERM",
		ExitStatusText("killed", 9):   "9/KILL",
		ExitStatusText("exited", 42):  "42",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
}

func TestFormatTimestampRelative(t *testing.T) {
	now := time.Now()
	cases := map[time.Duration]string{
		85 * time.Second:            "1min 25s ago",
		10 * time.Minute:            "10min ago",
		2*time.Hour + 5*time.Minute: "2h 5min ago",
		3 * 24 * time.Hour:          "3 days ago",
		30 * time.Second:            "30s ago",
	}
	for d, want := range cases {
		if got := FormatTimestampRelative(now.Add(-d), now); got != want {
			t.Errorf("%v: got %q want %q", d, got, want)
		}
	}
}

// The runner's own result wins over the guess from the commands: an OOM
// kill is a SIGKILL, but systemd says oom-kill.
func TestStatusResultFromState(t *testing.T) {
	st := Status{Name: "x.service", State: State{LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "oom-kill"},
		Execs: []ExecResult{{Kind: "ExecStart", Code: "killed", Status: 9, Start: time.Unix(1, 0), End: time.Unix(2, 0)}}}
	if out := FormatStatus(st, time.Unix(3, 0), "h", nil); !strings.Contains(out, "failed (Result: oom-kill)") {
		t.Errorf("status:\n%s", out)
	}
	st.Result = ""
	if out := FormatStatus(st, time.Unix(3, 0), "h", nil); !strings.Contains(out, "failed (Result: signal)") {
		t.Errorf("without a runner result:\n%s", out)
	}
}

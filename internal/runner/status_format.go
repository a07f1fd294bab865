package runner

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

var exitStatusNames = map[int]string{
	0: "SUCCESS", 1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED",
	4: "NOPERMISSION", 5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING",
	200: "CHDIR", 201: "NICE", 202: "FDS", 203: "EXEC", 204: "MEMORY",
	205: "LIMITS", 206: "OOM_ADJUST", 207: "SIGNAL_MASK", 208: "STDIN",
	209: "STDOUT", 210: "CHROOT", 211: "IOPRIO", 212: "TIMERSLACK",
	213: "SECUREBITS", 214: "SETSCHEDULER", 215: "CPUAFFINITY", 216: "GROUP",
	217: "USER", 218: "CAPABILITIES", 219: "CGROUP", 220: "SETSID",
	221: "CONFIRM", 222: "STDERR", 224: "PAM", 225: "NETWORK",
	226: "NAMESPACE",
}

var signalNames = map[int]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE",
	14: "ALRM", 15: "TERM", 16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP",
	20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ",
	26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS",
}

// ExitStatusText renders an exit the way systemd does: "0/SUCCESS",
// "1/FAILURE", "203/EXEC" for code "exited"; "15/TERM", "9/KILL" for code
// "killed" or "dumped".
func ExitStatusText(code string, status int) string {
	var name string
	if code == "exited" {
		name = exitStatusNames[status]
	} else {
		name = signalNames[status]
	}
	if name == "" {
		return strconv.Itoa(status)
	}
	return strconv.Itoa(status) + "/" + name
}

// FormatTimestampRelative renders how long ago t was, as systemctl does
// ("1min 25s ago", "2h 5min ago", "3 days ago").
func FormatTimestampRelative(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in the future"
	}
	const (
		day   = 24 * time.Hour
		week  = 7 * day
		month = time.Duration(30.44 * float64(day))
		year  = time.Duration(365.25 * float64(day))
	)
	n := func(x, unit time.Duration) int64 { return int64(x / unit) }
	switch {
	case d >= year:
		return fmt.Sprintf("%d years %d months ago", n(d, year), n(d%year, month))
	case d >= month:
		return fmt.Sprintf("%d months %d days ago", n(d, month), n(d%month, day))
	case d >= week:
		return fmt.Sprintf("%d weeks %d days ago", n(d, week), n(d%week, day))
	case d >= 2*day:
		return fmt.Sprintf("%d days ago", n(d, day))
	case d >= 25*time.Hour:
		return fmt.Sprintf("1 day %dh ago", n(d-day, time.Hour))
	case d >= 6*time.Hour:
		return fmt.Sprintf("%dh ago", n(d, time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dmin ago", n(d, time.Hour), n(d%time.Hour, time.Minute))
	case d >= 5*time.Minute:
		return fmt.Sprintf("%dmin ago", n(d, time.Minute))
	case d >= time.Minute:
		return fmt.Sprintf("%dmin %ds ago", n(d, time.Minute), n(d%time.Minute, time.Second))
	case d >= time.Second:
		return fmt.Sprintf("%ds ago", n(d, time.Second))
	case d >= time.Millisecond:
		return fmt.Sprintf("%dms ago", n(d, time.Millisecond))
	}
	return "now"
}

// statusResult is systemd's "Result:" of a failed unit: the runner's
// (State.Result), else guessed from its last run's commands.
func statusResult(st Status) string {
	if st.Result != "" && st.Result != "success" {
		return st.Result
	}
	for i := len(st.Execs) - 1; i >= 0; i-- {
		e := st.Execs[i]
		if e.End.IsZero() {
			continue
		}
		switch {
		case e.Code == "exited" && e.Status != 0:
			return "exit-code"
		case e.Code == "killed":
			return "signal"
		case e.Code == "dumped":
			return "core-dump"
		}
	}
	return "exit-code"
}

// FormatStatus renders st like `systemctl status -l`. host is unused by
// the header today but kept for callers that show it; recent are already
// formatted journal lines, printed after a blank line.
func FormatStatus(st Status, now time.Time, host string, recent []string) string {
	_ = host
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%9s: %s\n", label, fmt.Sprintf(format, args...))
	}
	bullet := "●"
	if st.ActiveState == "failed" {
		bullet = "×"
	}
	b.WriteString(bullet + " " + st.Name)
	if st.Description != "" {
		b.WriteString(" - " + st.Description)
	}
	b.WriteByte('\n')

	load := st.LoadState
	if load == "" {
		load = "not-found"
	}
	switch {
	case load == "error" && st.Error != "":
		line("Loaded", "error (Reason: %s)", st.Error)
	case st.UnitPath != "":
		line("Loaded", "%s (%s)", load, st.UnitPath)
	default:
		line("Loaded", "%s", load)
	}

	active := st.ActiveState
	if active == "" {
		active = "inactive"
	}
	act := active
	if st.SubState != "" {
		act += " (" + st.SubState + ")"
	}
	if active == "failed" {
		act = "failed (Result: " + statusResult(st) + ")"
	}
	if !st.Since.IsZero() {
		since := st.Since.In(now.Location())
		act += " since " + since.Format("Mon 2006-01-02 15:04:05 MST") + "; " + FormatTimestampRelative(st.Since, now)
	}
	line("Active", "%s", act)
	if st.Triggers != "" {
		formatTimerLines(line, st, now)
	}

	var mainExec *ExecResult
	for i := range st.Execs {
		e := &st.Execs[i]
		if st.MainPID != 0 && e.PID == st.MainPID {
			mainExec = e
			continue
		}
		if e.End.IsZero() {
			continue
		}
		if e.Kind == "ExecStart" && mainExec == nil && i == lastStart(st.Execs) && st.MainPID == 0 {
			mainExec = e
			continue
		}
		line("Process", "%d %s=%s (code=%s, status=%s)", e.PID, e.Kind, e.Cmd, e.Code, ExitStatusText(e.Code, e.Status))
	}
	switch {
	case st.MainPID != 0:
		comm := ""
		for _, p := range st.Processes {
			if p.PID == st.MainPID {
				comm = commOf(p.Cmd)
			}
		}
		if comm == "" && mainExec != nil {
			comm = commOf(mainExec.Cmd)
		}
		if comm != "" {
			line("Main PID", "%d (%s)", st.MainPID, comm)
		} else {
			line("Main PID", "%d", st.MainPID)
		}
	case mainExec != nil && mainExec.PID != 0:
		line("Main PID", "%d (code=%s, status=%s)", mainExec.PID, mainExec.Code, ExitStatusText(mainExec.Code, mainExec.Status))
	}
	if len(st.Processes) > 0 {
		line("CGroup", "%s", st.Name)
		for i, p := range st.Processes {
			branch := "├─"
			if i == len(st.Processes)-1 {
				branch = "└─"
			}
			fmt.Fprintf(&b, "%11s%s%d %s\n", "", branch, p.PID, p.Cmd)
		}
	}
	if len(recent) > 0 {
		b.WriteByte('\n')
		for _, r := range recent {
			b.WriteString(r)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func lastStart(es []ExecResult) int {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Kind == "ExecStart" {
			return i
		}
	}
	return -1
}

func commOf(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return ""
	}
	c := filepath.Base(f[0])
	if len(c) > 15 {
		c = c[:15]
	}
	return strings.Trim(c, "[]")
}

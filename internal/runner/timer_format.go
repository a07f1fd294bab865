package runner

import (
	"strings"
	"time"
)

// TimestampLayout is systemd's timestamp format ("Thu 2026-12-03 18:30:00 UTC").
const TimestampLayout = "Mon 2006-01-02 15:04:05 MST"

// FormatTimestampLeft renders how long until t, as systemctl list-timers
// does ("1min 20s left", "2h 5min left"); FormatTimestampRelative's
// wording with "left" for "ago". An instant not after now is "now".
func FormatTimestampLeft(t, now time.Time) string {
	if !t.After(now) {
		return "now"
	}
	s := FormatTimestampRelative(now, t)
	if rest, ok := strings.CutSuffix(s, " ago"); ok {
		return rest + " left"
	}
	return s
}

// formatTimerLines adds a timer's "Trigger:" and "Triggers:" lines (st is
// a .timer: Triggers is set).
func formatTimerLines(line func(label, format string, args ...any), st Status, now time.Time) {
	switch {
	case !st.Trigger.IsZero():
		line("Trigger", "%s; %s", st.Trigger.In(now.Location()).Format(TimestampLayout), FormatTimestampLeft(st.Trigger, now))
	case st.ActiveState == "active":
		line("Trigger", "n/a")
	}
	line("Triggers", "● %s", st.Triggers)
}

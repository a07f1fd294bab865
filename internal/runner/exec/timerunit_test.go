package exec

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/runner"
)

func TestTimerUnitStartStop(t *testing.T) {
	h := newHarness(t, true)
	h.load("tick.timer", "[Unit]\nDescription=Tick\n[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n")
	if st := h.r.States()["tick.timer"]; st.LoadState != "loaded" || st.ActiveState != "inactive" {
		t.Fatalf("after load: %+v", st)
	}
	h.start("tick.timer")
	st := h.waitState("tick.timer", "active", "waiting")
	if st.MainPID != 0 || st.Since.IsZero() {
		t.Errorf("active timer: %+v", st)
	}
	h.waitLog("tick.timer", "Started Tick.")

	next := time.Date(2026, 12, 3, 18, 30, 0, 0, time.UTC)
	h.r.SetTrigger("tick.timer", next)
	status, err := h.r.Status("tick.timer")
	if err != nil {
		t.Fatal(err)
	}
	if status.Triggers != "tick.service" || !status.Trigger.Equal(next) {
		t.Errorf("status: Triggers %q Trigger %v", status.Triggers, status.Trigger)
	}
	text := runner.FormatStatus(status, next.Add(-80*time.Second), "", nil)
	for _, want := range []string{
		"● tick.timer - Tick",
		"   Active: active (waiting) since ",
		"  Trigger: Thu 2026-12-03 18:30:00 UTC; 1min 20s left\n",
		" Triggers: ● tick.service\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}

	h.stop("tick.timer")
	h.waitState("tick.timer", "inactive", "dead")
	h.waitLog("tick.timer", "Stopped Tick.")
	if status, _ := h.r.Status("tick.timer"); !status.Trigger.IsZero() {
		t.Errorf("stopped timer still has a trigger: %v", status.Trigger)
	}
	// Started again, it waits again.
	h.start("tick.timer")
	h.waitState("tick.timer", "active", "waiting")
}

func TestTimerUnitInvalid(t *testing.T) {
	h := newHarness(t, true)
	for name, text := range map[string]string{
		"badcal.timer":  "[Timer]\nOnCalendar=*:*:0/x\n",
		"unknown.timer": "[Timer]\nOnCalendar=daily\nOnFoo=1\n",
		"none.timer":    "[Timer]\nPersistent=true\n",
	} {
		h.load(name, text)
		st := h.r.States()[name]
		if st.LoadState != "error" {
			t.Errorf("%s: LoadState %q, want error", name, st.LoadState)
		}
		status, _ := h.r.Status(name)
		if !strings.Contains(status.Error, name) {
			t.Errorf("%s: error %q does not name the unit", name, status.Error)
		}
		h.start(name)
		h.waitState(name, "failed", "failed")
	}
	status, _ := h.r.Status("badcal.timer")
	if !strings.Contains(status.Error, "offset") {
		t.Errorf("bad calendar error %q does not point at the position", status.Error)
	}
}

func TestFormatTimestampLeft(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		80 * time.Second:               "1min 20s left",
		3 * time.Second:                "3s left",
		0:                              "now",
		-time.Second:                   "now",
		2*time.Hour + 5*time.Minute:    "2h 5min left",
		3*24*time.Hour + 2*time.Minute: "3 days left",
	} {
		if got := runner.FormatTimestampLeft(now.Add(d), now); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

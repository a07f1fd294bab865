// Package timer holds the pure logic of systemd-style .timer units as fleet
// runs them (systemd.timer(5)): parsing the [Timer] section and deciding,
// from clock inputs only, when a timer elapses next and whether it is due.
//
// Fleet keeps a timer's last trigger in the cluster store and passes it in
// as State.LastTrigger, so whichever machine runs the timer computes the
// same slots: a slot is identified by its (unrandomized) elapse time and
// fires at most once, because Due never returns a slot <= LastTrigger.
// The caller records the returned slot as the new LastTrigger.
package timer

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/calendar"
	"github.com/fleetd/fleet/internal/fleet"
)

// DefaultAccuracy is the AccuracySec= default, as in systemd.
const DefaultAccuracy = time.Minute

// Timer is a parsed [Timer] section.
type Timer struct {
	// Unit is the unit the timer activates (Unit=, default NAME.service).
	Unit string
	// OnCalendar holds the OnCalendar= expressions.
	OnCalendar []calendar.Spec
	// Monotonic triggers, relative to their respective base times.
	OnActive       []time.Duration // OnActiveSec=, from State.Activated
	OnBoot         []time.Duration // OnBootSec= and OnStartupSec=, from State.Booted
	OnUnitActive   []time.Duration // OnUnitActiveSec=, from State.UnitLastActive
	OnUnitInactive []time.Duration // OnUnitInactiveSec=, from State.UnitLastInactive
	// Accuracy (AccuracySec=) is the slack the runner may add to an elapse
	// to coalesce wake-ups; fleet never fires early because of it.
	Accuracy time.Duration
	// RandomizedDelay (RandomizedDelaySec=) delays each slot by a
	// deterministic amount in [0, RandomizedDelay) drawn from
	// State.RandomSeed and the slot, so every machine agrees.
	RandomizedDelay time.Duration
	// FixedRandomDelay (FixedRandomDelay=) uses the same delay for every slot.
	FixedRandomDelay bool
	// Persistent (Persistent=) fires a calendar slot missed while no machine
	// ran the timer once, as soon as the timer runs again.
	Persistent bool
}

// State carries the clock inputs of a timer evaluation.
type State struct {
	Now              time.Time // the current time
	Booted           time.Time // when fleetd started (OnBootSec=)
	Activated        time.Time // when the timer unit was started (OnActiveSec=)
	LastTrigger      time.Time // last fired slot, from the cluster store; zero if never
	UnitLastActive   time.Time // last activation of the triggered unit; zero if never
	UnitLastInactive time.Time // last deactivation of the triggered unit; zero if never
	RandomSeed       uint64    // seed for RandomizedDelaySec=, same on every machine
}

// ignored are [Timer] options fleet accepts but which have no effect.
var ignored = map[string]bool{
	"WakeSystem": true, "RemainAfterElapse": true,
	"OnClockChange": true, "OnTimezoneChange": true,
}

// ParseTimer reads the [Timer] section of unit unitName (which must end in
// ".timer"). Options of other sections are ignored. As in systemd, an empty
// value resets a list option (OnCalendar=, On*Sec=).
func ParseTimer(unitName string, opts []fleet.UnitOption) (Timer, error) {
	base, ok := strings.CutSuffix(unitName, ".timer")
	if !ok || base == "" {
		return Timer{}, fmt.Errorf("%s: a timer unit's name must end in .timer", unitName)
	}
	t := Timer{Unit: base + ".service", Accuracy: DefaultAccuracy}
	bad := func(o fleet.UnitOption, err error) error {
		return fmt.Errorf("%s: [Timer] %s=%s: %w", unitName, o.Name, o.Value, err)
	}
	for _, o := range opts {
		if o.Section != "Timer" {
			continue
		}
		v := strings.TrimSpace(o.Value)
		var list *[]time.Duration
		switch o.Name {
		case "OnCalendar":
			if v == "" {
				t.OnCalendar = nil
				continue
			}
			spec, err := calendar.Parse(v)
			if err != nil {
				return Timer{}, fmt.Errorf("%s: [Timer] OnCalendar=: %w", unitName, err)
			}
			t.OnCalendar = append(t.OnCalendar, spec)
			continue
		case "OnActiveSec":
			list = &t.OnActive
		case "OnBootSec", "OnStartupSec":
			list = &t.OnBoot
		case "OnUnitActiveSec":
			list = &t.OnUnitActive
		case "OnUnitInactiveSec":
			list = &t.OnUnitInactive
		case "AccuracySec", "RandomizedDelaySec":
			d, err := ParseSpan(v)
			if err != nil {
				return Timer{}, bad(o, err)
			}
			if o.Name == "AccuracySec" {
				t.Accuracy = max(d, time.Microsecond)
			} else {
				t.RandomizedDelay = d
			}
			continue
		case "Persistent", "FixedRandomDelay":
			b, err := parseBool(v)
			if err != nil {
				return Timer{}, bad(o, err)
			}
			if o.Name == "Persistent" {
				t.Persistent = b
			} else {
				t.FixedRandomDelay = b
			}
			continue
		case "Unit":
			if err := checkUnitName(v); err != nil {
				return Timer{}, bad(o, err)
			}
			t.Unit = v
			continue
		default:
			if ignored[o.Name] {
				continue
			}
			return Timer{}, fmt.Errorf("%s: unknown option %s= in [Timer]", unitName, o.Name)
		}
		if v == "" {
			*list = nil
			continue
		}
		d, err := ParseSpan(v)
		if err != nil {
			return Timer{}, bad(o, err)
		}
		*list = append(*list, d)
	}
	if len(t.OnCalendar)+len(t.OnActive)+len(t.OnBoot)+len(t.OnUnitActive)+len(t.OnUnitInactive) == 0 {
		return Timer{}, fmt.Errorf("%s: [Timer] needs at least one of OnCalendar=, OnActiveSec=, OnBootSec=, OnUnitActiveSec=, OnUnitInactiveSec=", unitName)
	}
	return t, nil
}

func checkUnitName(v string) error {
	dot := strings.LastIndexByte(v, '.')
	if v == "" || dot <= 0 || dot == len(v)-1 || strings.ContainsAny(v, "/ \t") {
		return fmt.Errorf("invalid unit name %q", v)
	}
	if strings.HasSuffix(v, ".timer") {
		return fmt.Errorf("a timer cannot activate another timer (%q)", v)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", v)
}

// delay returns the randomized delay of slot, deterministic in seed.
func (t Timer) delay(seed uint64, slot time.Time) time.Duration {
	if t.RandomizedDelay <= 0 {
		return 0
	}
	x := seed
	if !t.FixedRandomDelay {
		x ^= uint64(slot.UnixMicro())
	}
	// splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	us := uint64(t.RandomizedDelay / time.Microsecond)
	if us == 0 {
		return 0
	}
	return time.Duration(x%us) * time.Microsecond
}

// calendarBase is the instant after which calendar slots count. With
// Persistent=, that is the last trigger (so a slot missed while no machine
// ran the timer still fires); otherwise also not before the timer was
// activated (missed slots are skipped).
func (t Timer) calendarBase(st State) time.Time {
	base := st.LastTrigger
	if !t.Persistent || base.IsZero() {
		base = later(base, st.Activated)
	}
	if base.IsZero() {
		base = st.Now
	}
	return base
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// monotonic returns the slots (base + span) of the armed monotonic triggers.
func (t Timer) monotonic(st State) []time.Time {
	var out []time.Time
	add := func(base time.Time, spans []time.Duration) {
		if base.IsZero() {
			return
		}
		for _, d := range spans {
			out = append(out, base.Add(d))
		}
	}
	add(st.Activated, t.OnActive)
	add(st.Booted, t.OnBoot)
	add(st.UnitLastActive, t.OnUnitActive)
	add(st.UnitLastInactive, t.OnUnitInactive)
	return out
}

// pending is one trigger's next slot and its (randomized) elapse time.
type pending struct {
	slot, elapse time.Time
}

// pendings lists, per trigger, the slot that is due now or comes next.
// Every slot is after LastTrigger.
func (t Timer) pendings(st State) []pending {
	var out []pending
	add := func(slot time.Time) {
		if !st.LastTrigger.IsZero() && !slot.After(st.LastTrigger) {
			return
		}
		out = append(out, pending{slot, slot.Add(t.delay(st.RandomSeed, slot))})
	}
	for _, slot := range t.monotonic(st) {
		add(slot)
	}
	base := t.calendarBase(st)
	for _, spec := range t.OnCalendar {
		// The latest slot at or before Now, if it is after the base:
		// all missed slots collapse into it.
		if prev, ok := spec.Prev(st.Now); ok && prev.After(base) {
			// base >= LastTrigger, so this slot has not fired yet. It is
			// due now, or waiting for its randomized delay.
			out = append(out, pending{prev, prev.Add(t.delay(st.RandomSeed, prev))})
		}
		if next, ok := spec.Next(later(base, st.Now)); ok {
			add(next)
		}
	}
	return out
}

// Next returns when the timer elapses next: an instant at or before
// st.Now if a trigger is already due, false if no trigger is armed (all
// one-shot triggers consumed, calendar specs in the past, unit never
// active for OnUnit*Sec=).
func (t Timer) Next(st State) (time.Time, bool) {
	var best time.Time
	for _, p := range t.pendings(st) {
		if best.IsZero() || p.elapse.Before(best) {
			best = p.elapse
		}
	}
	return best, !best.IsZero()
}

// Due reports whether the timer should trigger its unit now, and the slot
// to record as the new LastTrigger. When several triggers are due, the
// latest slot is returned, so recording it consumes all of them. The slot
// is always after st.LastTrigger, so one slot never fires twice; after
// recording it, Due is false until the next slot elapses.
func (t Timer) Due(st State) (slot time.Time, ok bool) {
	for _, p := range t.pendings(st) {
		if !p.elapse.After(st.Now) && p.slot.After(slot) {
			slot, ok = p.slot, true
		}
	}
	return slot, ok
}

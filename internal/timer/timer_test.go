package timer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

func opts(kv ...string) []fleet.UnitOption {
	var out []fleet.UnitOption
	for i := 0; i < len(kv); i += 2 {
		out = append(out, fleet.UnitOption{Section: "Timer", Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func mustTimer(t testing.TB, kv ...string) Timer {
	t.Helper()
	tm, err := ParseTimer("job.timer", opts(kv...))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"5min 20s", 5*time.Minute + 20*time.Second},
		{"5min20s", 5*time.Minute + 20*time.Second},
		{"2h", 2 * time.Hour},
		{"500ms", 500 * time.Millisecond},
		{"30", 30 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"1.5h", 90 * time.Minute},
		{"2 h 3 m", 2*time.Hour + 3*time.Minute},
		{"1d", 24 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
		{"1M", 2629800 * time.Second},
		{"1y", 31557600 * time.Second},
		{"10us", 10 * time.Microsecond},
		{"1 hour 1 minute 1 second", time.Hour + time.Minute + time.Second},
		{"0", 0},
	}
	for _, tc := range tests {
		got, err := ParseSpan(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSpan(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "abc", "5 parsecs", "-5s", "1..2s", "s", "99999999999y"} {
		if d, err := ParseSpan(bad); err == nil {
			t.Errorf("ParseSpan(%q) = %v, want an error", bad, d)
		}
	}
}

func TestParseTimer(t *testing.T) {
	tm := mustTimer(t, "OnCalendar", "Mon..Fri 09:00", "OnCalendar", "daily")
	if tm.Unit != "job.service" || tm.Accuracy != time.Minute || len(tm.OnCalendar) != 2 || tm.Persistent {
		t.Fatalf("defaults: %+v", tm)
	}
	if tm.OnCalendar[0].Normalized() != "Mon..Fri *-*-* 09:00:00" {
		t.Fatalf("OnCalendar[0] = %s", tm.OnCalendar[0])
	}
	tm = mustTimer(t, "OnCalendar", "daily", "OnCalendar", "", "OnCalendar", "hourly",
		"OnActiveSec", "1min", "OnBootSec", "5min 20s", "OnStartupSec", "1h", "OnUnitActiveSec", "2h",
		"OnUnitInactiveSec", "500ms", "AccuracySec", "1s", "RandomizedDelaySec", "30", "Persistent", "yes",
		"Unit", "other.service", "WakeSystem", "true")
	if len(tm.OnCalendar) != 1 || tm.OnCalendar[0].Normalized() != "*-*-* *:00:00" {
		t.Errorf("empty OnCalendar= should reset: %v", tm.OnCalendar)
	}
	if fmt.Sprint(tm.OnActive, tm.OnBoot, tm.OnUnitActive, tm.OnUnitInactive) != "[1m0s] [5m20s 1h0m0s] [2h0m0s] [500ms]" {
		t.Errorf("monotonic: %v %v %v %v", tm.OnActive, tm.OnBoot, tm.OnUnitActive, tm.OnUnitInactive)
	}
	if tm.Accuracy != time.Second || tm.RandomizedDelay != 30*time.Second || !tm.Persistent || tm.Unit != "other.service" {
		t.Errorf("parsed: %+v", tm)
	}
	// Other sections are ignored.
	o := append(opts("OnActiveSec", "1"), fleet.UnitOption{Section: "Unit", Name: "Description", Value: "x"})
	if _, err := ParseTimer("a.timer", o); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name string
		kv   []string
		want string
	}{
		{"job.timer", []string{"OnCalendar", "Mon..Fry 09:00"}, `invalid calendar spec "Mon..Fry 09:00": unknown weekday "Fry" at offset 5`},
		{"job.timer", []string{"OnActiveSec", "5 parsecs"}, `unknown unit "parsecs"`},
		{"job.timer", []string{"OnCalendar", "daily", "Persistent", "maybe"}, `invalid boolean "maybe"`},
		{"job.timer", []string{"OnCalendar", "daily", "Unit", "x.timer"}, "cannot activate another timer"},
		{"job.timer", []string{"OnCalendar", "daily", "Unit", "noext"}, `invalid unit name "noext"`},
		{"job.timer", []string{"OnCalendar", "daily", "OnCalender", "daily"}, "unknown option OnCalender="},
		{"job.timer", []string{"Persistent", "true"}, "needs at least one of"},
		{"job.timer", []string{"OnBootSec", "1", "OnBootSec", ""}, "needs at least one of"},
		{"job.service", []string{"OnCalendar", "daily"}, "must end in .timer"},
	}
	for _, tc := range bad {
		_, err := ParseTimer(tc.name, opts(tc.kv...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTimer(%s, %v) = %v, want error containing %q", tc.name, tc.kv, err, tc.want)
		}
	}
}

func TestMonotonicTriggers(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		st   State
		next time.Time // zero: none
		due  time.Time // zero: not due
	}{
		{"OnActiveSec pending", []string{"OnActiveSec", "30s"}, State{Now: at(10 * time.Second), Activated: t0}, at(30 * time.Second), time.Time{}},
		{"OnActiveSec due", []string{"OnActiveSec", "30s"}, State{Now: at(30 * time.Second), Activated: t0}, at(30 * time.Second), at(30 * time.Second)},
		{"OnActiveSec late fires once", []string{"OnActiveSec", "30s"}, State{Now: at(time.Hour), Activated: t0}, at(30 * time.Second), at(30 * time.Second)},
		{"OnActiveSec consumed", []string{"OnActiveSec", "30s"}, State{Now: at(time.Hour), Activated: t0, LastTrigger: at(30 * time.Second)}, time.Time{}, time.Time{}},
		{"OnActiveSec unarmed", []string{"OnActiveSec", "30s"}, State{Now: at(time.Hour)}, time.Time{}, time.Time{}},
		{"OnBootSec from fleetd start", []string{"OnBootSec", "5min"}, State{Now: at(time.Minute), Booted: t0, Activated: at(time.Minute)}, at(5 * time.Minute), time.Time{}},
		{"OnBootSec new run after old trigger", []string{"OnBootSec", "5min"}, State{Now: at(6 * time.Minute), Booted: t0, LastTrigger: t0.Add(-time.Hour)}, at(5 * time.Minute), at(5 * time.Minute)},
		{"OnUnitActiveSec never active", []string{"OnUnitActiveSec", "1h"}, State{Now: at(2 * time.Hour), Activated: t0}, time.Time{}, time.Time{}},
		{"OnUnitActiveSec recurring", []string{"OnUnitActiveSec", "1h"}, State{Now: at(2 * time.Hour), Activated: t0, UnitLastActive: at(time.Hour), LastTrigger: at(59 * time.Minute)}, at(2 * time.Hour), at(2 * time.Hour)},
		{"OnUnitActiveSec waits for next activation", []string{"OnUnitActiveSec", "1h"}, State{Now: at(2*time.Hour + time.Second), UnitLastActive: at(time.Hour), LastTrigger: at(2 * time.Hour)}, time.Time{}, time.Time{}},
		{"OnUnitInactiveSec", []string{"OnUnitInactiveSec", "10min"}, State{Now: at(20 * time.Minute), UnitLastInactive: at(5 * time.Minute)}, at(15 * time.Minute), at(15 * time.Minute)},
		{"boot + unit active, latest due slot wins", []string{"OnBootSec", "1min", "OnUnitActiveSec", "1min"},
			State{Now: at(10 * time.Minute), Booted: t0, UnitLastActive: at(2 * time.Minute)}, at(time.Minute), at(3 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := mustTimer(t, tc.kv...)
			n, ok := tm.Next(tc.st)
			if ok != !tc.next.IsZero() || ok && !n.Equal(tc.next) {
				t.Errorf("Next = %v %v, want %v", n, ok, tc.next)
			}
			d, ok := tm.Due(tc.st)
			if ok != !tc.due.IsZero() || ok && !d.Equal(tc.due) {
				t.Errorf("Due = %v %v, want %v", d, ok, tc.due)
			}
			if ok && !tc.st.LastTrigger.IsZero() && !d.After(tc.st.LastTrigger) {
				t.Errorf("Due slot %v not after LastTrigger %v", d, tc.st.LastTrigger)
			}
		})
	}
}

func TestCalendarTriggers(t *testing.T) {
	// Hourly timer; the machine running it died at 10:30 (last trigger 10:00)
	// and another machine activated it at 13:20.
	hourly := []string{"OnCalendar", "hourly"}
	persistent := []string{"OnCalendar", "hourly", "Persistent", "true"}
	gap := State{Now: at(3*time.Hour + 20*time.Minute), Activated: at(3*time.Hour + 20*time.Minute), LastTrigger: t0}
	tests := []struct {
		name string
		kv   []string
		st   State
		next time.Time
		due  time.Time
	}{
		{"first activation waits for the next slot", hourly, State{Now: at(20 * time.Minute), Activated: at(20 * time.Minute)}, at(time.Hour), time.Time{}},
		{"first activation persistent does not catch up", persistent, State{Now: at(20 * time.Minute), Activated: at(20 * time.Minute)}, at(time.Hour), time.Time{}},
		{"slot due", hourly, State{Now: at(time.Hour + 100*time.Millisecond), Activated: at(20 * time.Minute)}, at(time.Hour), at(time.Hour)},
		{"slot recorded", hourly, State{Now: at(time.Hour + time.Second), Activated: at(20 * time.Minute), LastTrigger: at(time.Hour)}, at(2 * time.Hour), time.Time{}},
		{"missed slots skipped without Persistent", hourly, gap, at(4 * time.Hour), time.Time{}},
		{"missed slot fires once with Persistent", persistent, gap, at(3 * time.Hour), at(3 * time.Hour)},
		{"persistent after catching up", persistent, State{Now: gap.Now, Activated: gap.Activated, LastTrigger: at(3 * time.Hour)}, at(4 * time.Hour), time.Time{}},
		{"late check on a running machine still fires", hourly, State{Now: at(time.Hour + 5*time.Second), Activated: t0, LastTrigger: t0}, at(time.Hour), at(time.Hour)},
		{"stall collapses slots into the latest", hourly, State{Now: at(3*time.Hour + 5*time.Second), Activated: t0, LastTrigger: t0}, at(3 * time.Hour), at(3 * time.Hour)},
		{"past fixed date", []string{"OnCalendar", "2020-01-01"}, State{Now: t0, Activated: t0}, time.Time{}, time.Time{}},
		{"two calendars", []string{"OnCalendar", "*-*-* 11:00", "OnCalendar", "*-*-* 10:30"}, State{Now: at(time.Minute), Activated: t0}, at(30 * time.Minute), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := mustTimer(t, tc.kv...)
			n, ok := tm.Next(tc.st)
			if ok != !tc.next.IsZero() || ok && !n.Equal(tc.next) {
				t.Errorf("Next = %v %v, want %v", n, ok, tc.next)
			}
			d, ok := tm.Due(tc.st)
			if ok != !tc.due.IsZero() || ok && !d.Equal(tc.due) {
				t.Errorf("Due = %v %v, want %v", d, ok, tc.due)
			}
		})
	}
}

func TestRandomizedDelay(t *testing.T) {
	tm := mustTimer(t, "OnCalendar", "hourly", "RandomizedDelaySec", "10min")
	st := State{Now: at(30 * time.Minute), Activated: t0, RandomSeed: 42}
	n1, _ := tm.Next(st)
	n2, _ := tm.Next(st)
	if !n1.Equal(n2) {
		t.Fatalf("not deterministic: %v %v", n1, n2)
	}
	delay := n1.Sub(at(time.Hour))
	if delay < 0 || delay >= 10*time.Minute {
		t.Fatalf("delay %v outside [0, 10min)", delay)
	}
	// Not due at the slot itself (unless the delay is 0), due at slot+delay, with the slot.
	st.Now = n1.Add(-time.Microsecond)
	if _, ok := tm.Due(st); ok && delay > 0 {
		t.Fatalf("due before its randomized elapse")
	}
	if n, _ := tm.Next(st); !n.Equal(n1) {
		t.Fatalf("Next while waiting for the delay = %v, want %v", n, n1)
	}
	st.Now = n1
	if slot, ok := tm.Due(st); !ok || !slot.Equal(at(time.Hour)) {
		t.Fatalf("Due = %v %v", slot, ok)
	}
	// Different slots and seeds draw different delays; FixedRandomDelay does not.
	delays := map[time.Duration]bool{}
	for h := range 20 {
		delays[tm.delay(42, at(time.Duration(h)*time.Hour))] = true
	}
	if len(delays) < 15 {
		t.Errorf("only %d distinct delays over 20 slots", len(delays))
	}
	fixed := mustTimer(t, "OnCalendar", "hourly", "RandomizedDelaySec", "10min", "FixedRandomDelay", "yes")
	if fixed.delay(42, t0) != fixed.delay(42, at(time.Hour)) || fixed.delay(42, t0) == fixed.delay(43, t0) {
		t.Errorf("FixedRandomDelay: delays %v %v %v", fixed.delay(42, t0), fixed.delay(42, at(time.Hour)), fixed.delay(43, t0))
	}
}

// machine is one fleetd running the timer during [from, to).
type machine struct {
	name     string
	from, to time.Duration
}

// simulate runs a timer on a sequence of machines, each polling every
// `tick`, with the last trigger shared through a "store". It returns the
// transcript of triggers.
func simulate(tm Timer, machines []machine, tick time.Duration) []string {
	var lastTrigger time.Time
	var out []string
	for _, m := range machines {
		activated := t0.Add(m.from)
		for now := m.from; now < m.to; now += tick {
			st := State{Now: t0.Add(now), Activated: activated, Booted: activated, LastTrigger: lastTrigger, RandomSeed: 1}
			if slot, ok := tm.Due(st); ok {
				out = append(out, fmt.Sprintf("%s@%.1fs slot %.0f", m.name, now.Seconds(), slot.Sub(t0).Seconds()))
				lastTrigger = slot
			}
		}
	}
	return out
}

func TestTranscriptTwoSecondTimerFailover(t *testing.T) {
	// 20 s of a 2-second timer: machine A runs it from 0.3 s, is killed at
	// 7.3 s; B picks it up at 12.5 s. Polling every 100 ms.
	machines := []machine{{"A", 300 * time.Millisecond, 7300 * time.Millisecond}, {"B", 12500 * time.Millisecond, 20100 * time.Millisecond}}
	plain := simulate(mustTimer(t, "OnCalendar", "*:*:0/2"), machines, 100*time.Millisecond)
	want := []string{
		"A@2.0s slot 2", "A@4.0s slot 4", "A@6.0s slot 6",
		"B@14.0s slot 14", "B@16.0s slot 16", "B@18.0s slot 18", "B@20.0s slot 20",
	}
	if strings.Join(plain, "\n") != strings.Join(want, "\n") {
		t.Errorf("without Persistent:\n%s\nwant:\n%s", strings.Join(plain, "\n"), strings.Join(want, "\n"))
	}
	persistent := simulate(mustTimer(t, "OnCalendar", "*:*:0/2", "Persistent", "true"), machines, 100*time.Millisecond)
	want = []string{
		"A@2.0s slot 2", "A@4.0s slot 4", "A@6.0s slot 6",
		"B@12.5s slot 12", // the missed slots 8, 10, 12 fire once, immediately
		"B@14.0s slot 14", "B@16.0s slot 16", "B@18.0s slot 18", "B@20.0s slot 20",
	}
	if strings.Join(persistent, "\n") != strings.Join(want, "\n") {
		t.Errorf("with Persistent:\n%s\nwant:\n%s", strings.Join(persistent, "\n"), strings.Join(want, "\n"))
	}
	// A fast failover inside a slot: A fired slot 6 at 6.0 s and died at
	// 6.3 s; B starts at 6.5 s with the stored last trigger and must not
	// fire slot 6 again.
	for _, kv := range [][]string{{"OnCalendar", "*:*:0/2"}, {"OnCalendar", "*:*:0/2", "Persistent", "true"}} {
		got := simulate(mustTimer(t, kv...), []machine{{"A", 5 * time.Second, 6300 * time.Millisecond}, {"B", 6500 * time.Millisecond, 9 * time.Second}}, 100*time.Millisecond)
		want := []string{"A@6.0s slot 6", "B@8.0s slot 8"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%v fast failover:\n%s\nwant:\n%s", kv, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestPropertySlotsIncreaseAndFireOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 14))
	configs := [][]string{
		{"OnCalendar", "*:*:0/2"},
		{"OnCalendar", "*:*:0/2", "Persistent", "true"},
		{"OnCalendar", "*:*:0/3", "OnCalendar", "*:*:0/5", "RandomizedDelaySec", "1"},
		{"OnCalendar", "*:*:0/7", "Persistent", "true", "RandomizedDelaySec", "500ms"},
		{"OnBootSec", "3", "OnUnitActiveSec", "4"},
		{"OnActiveSec", "1", "OnCalendar", "*:*:0/4", "OnUnitInactiveSec", "2"},
	}
	for _, kv := range configs {
		tm := mustTimer(t, kv...)
		for run := range 20 {
			var last time.Time
			var unitActive, unitInactive time.Time
			booted := t0
			activated := t0.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			fired := map[time.Time]bool{}
			now := activated
			for step := 0; step < 600; step++ {
				now = now.Add(time.Duration(1+r.IntN(300)) * time.Millisecond)
				if r.IntN(100) == 0 { // failover: a gap, then a new activation
					now = now.Add(time.Duration(r.IntN(10)) * time.Second)
					activated, booted = now, now
				}
				st := State{Now: now, Booted: booted, Activated: activated, LastTrigger: last,
					UnitLastActive: unitActive, UnitLastInactive: unitInactive, RandomSeed: uint64(run)}
				slot, ok := tm.Due(st)
				if !ok {
					continue
				}
				if !last.IsZero() && !slot.After(last) {
					t.Fatalf("%v: slot %v not after last trigger %v", kv, slot, last)
				}
				if slot.After(now) {
					t.Fatalf("%v: slot %v in the future of %v", kv, slot, now)
				}
				if fired[slot] {
					t.Fatalf("%v: slot %v fired twice", kv, slot)
				}
				fired[slot] = true
				last = slot
				unitActive = now.Add(10 * time.Millisecond)
				unitInactive = now.Add(50 * time.Millisecond)
				// Once recorded, nothing is due until the next elapse.
				st.LastTrigger = last
				next, hasNext := tm.Next(st)
				if s2, ok := tm.Due(st); ok {
					t.Fatalf("%v: due again (%v) right after recording %v", kv, s2, slot)
				}
				if hasNext && !next.After(now) {
					t.Fatalf("%v: Next %v not after now %v after recording", kv, next, now)
				}
				if hasNext {
					st.Now = next.Add(-time.Microsecond)
					if s2, ok := tm.Due(st); ok {
						t.Fatalf("%v: due (%v) before the next elapse %v", kv, s2, next)
					}
				}
			}
			if len(fired) == 0 {
				t.Fatalf("%v: never fired", kv)
			}
		}
	}
}

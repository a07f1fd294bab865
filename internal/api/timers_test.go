package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/auth"
	"github.com/fleetd/fleet/internal/store"
)

func TestPutTimerValidation(t *testing.T) {
	e := newEnv(t, 0)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|*-*-* 25:00"), `invalid calendar spec \"*-*-* 25:00\": hour out of range \"25\" at offset 6`},
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|*:*:0/x"), "at offset"},
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|daily", "Timer|AccuracySec|soon"), "AccuracySec=soon"},
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|daily", "Timer|OnFoo|1"), "unknown option OnFoo="},
		{"bad.timer", unitBody("bad.timer", "Unit|Description|nothing"), "needs at least one of OnCalendar="},
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|daily"), "bad.timer activates bad.service, which does not exist"},
		{"bad.timer", unitBody("bad.timer", "Timer|OnCalendar|daily", "Timer|Unit|missing.service"), "activates missing.service, which does not exist"},
	} {
		r := e.do("PUT", "/fleet/v1/units/"+tc.name, "application/json", tc.body)
		if r.code != 400 || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.body, r.code, r.body, tc.want)
		}
		if _, ok := e.unit(tc.name); ok {
			t.Fatalf("%s: a refused timer was stored", tc.body)
		}
	}
	// The position of a calendar error: the offending token and its offset.
	r := e.do("PUT", "/fleet/v1/units/bad.timer", "application/json", unitBody("bad.timer", "Timer|OnCalendar|Mon..Fri 09:0x"))
	if r.code != 400 || !strings.Contains(r.body, "offset") {
		t.Errorf("calendar error without position: %d %s", r.code, r.body)
	}

	e.putUnit("work.service", unitBody("work.service", "Service|Type|oneshot", "Service|ExecStart|/bin/true"))
	e.putUnit("work.timer", unitBody("work.timer", "Timer|OnCalendar|*:*:0/2"))
	e.putUnit("other.timer", unitBody("other.timer", "Timer|OnCalendar|daily", "Timer|Unit|work.service"))
	// A template timer is checked for its syntax only.
	e.putUnit("t@.timer", unitBody("t@.timer", "Timer|OnCalendar|daily"))
	if r := e.do("PUT", "/fleet/v1/units/u@.timer", "application/json", unitBody("u@.timer", "Timer|OnCalendar|nope")); r.code != 400 {
		t.Errorf("bad template timer: %d %s", r.code, r.body)
	}
}

func TestListTimers(t *testing.T) {
	e := newEnv(t, 0)
	expect(t, "no timers", e.do("GET", "/fleet/v1/timers", "", ""), 200, `{"timers":[]}`)
	e.putUnit("a.service", unitBody("a.service", "Service|Type|oneshot", "Service|ExecStart|/bin/true"))
	for _, name := range []string{"a.timer", "b.timer", "c.timer", "idle.timer"} {
		e.putUnit(name, unitBody(name, "Timer|OnCalendar|*:*:0/2", "Timer|Unit|a.service"))
		if name != "idle.timer" {
			if r := e.do("PUT", "/fleet/v1/units/"+name, "application/json", `{"desiredState":"launched"}`); r.code != 204 {
				t.Fatalf("launch %s: %d %s", name, r.code, r.body)
			}
		}
	}
	e.place("a.timer", "m1")
	e.place("b.timer", "m2")
	last := time.Date(2026, 12, 3, 18, 29, 58, 0, time.UTC)
	next := last.Add(2 * time.Second)
	ctx := e.ctx()
	if ok, err := e.store.RecordTrigger(ctx, store.TimerRecord{Timer: "a.timer", Activates: "a.service", Machine: "m1", LastTrigger: last, Next: next}, time.Time{}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// b's record is from a machine it left: its next is not shown.
	if ok, err := e.store.RecordTrigger(ctx, store.TimerRecord{Timer: "b.timer", Activates: "a.service", Machine: "gone", LastTrigger: last, Next: next}, time.Time{}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	r := e.do("GET", "/fleet/v1/timers", "", "")
	var got TimerList
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.code != 200 {
		t.Fatalf("GET timers: %d %s", r.code, r.body)
	}
	want := []Timer{
		{Unit: "a.timer", Activates: "a.service", Machine: "m1", Next: next, Last: last},
		{Unit: "b.timer", Activates: "a.service", Machine: "m2", Last: last},
		{Unit: "c.timer", Activates: "a.service"},
	}
	if len(got.Timers) != len(want) {
		t.Fatalf("timers = %+v", got.Timers)
	}
	for i, w := range want {
		g := got.Timers[i]
		if g.Unit != w.Unit || g.Activates != w.Activates || g.Machine != w.Machine || !g.Next.Equal(w.Next) || !g.Last.Equal(w.Last) {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
	if !strings.Contains(r.body, `"next":"2026-12-03T18:30:00Z"`) || strings.Contains(r.body, `"next":"0001`) {
		t.Errorf("body %s", r.body)
	}
	if r := e.do("POST", "/fleet/v1/timers", "", ""); r.code != 405 {
		t.Errorf("POST timers: %d", r.code)
	}
}

// A read-only credential may list timers.
func TestListTimersReadOnly(t *testing.T) {
	e := newEnvWith(t, Config{MachineID: machineA, Auth: testPolicy(t, auth.Config{})})
	req := httptest.NewRequest("GET", "/fleet/v1/timers", nil)
	req.RemoteAddr = "192.0.2.7:41000"
	req.Header.Set("Authorization", "Bearer "+readonlyToken)
	rec := httptest.NewRecorder()
	e.api.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"timers"`) {
		t.Fatalf("readonly GET timers: %d %s", rec.Code, rec.Body)
	}
}
